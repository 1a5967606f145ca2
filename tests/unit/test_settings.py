import pytest
from pydantic import ValidationError

from vidsight.settings import Settings


def test_environment_fills_top_level_and_nested_fields(monkeypatch):
    monkeypatch.setenv("VIDSIGHT_REDIS_URL", "redis://db:6379/2")
    monkeypatch.setenv("VIDSIGHT_RAY_ADDRESS", "head:6380")
    monkeypatch.setenv("VIDSIGHT_DATA_DIR", "/var/lib/vidsight")
    monkeypatch.setenv("VIDSIGHT_INGEST__SAMPLE_FPS", "2.5")
    s = Settings()
    assert s.redis_url == "redis://db:6379/2"
    assert s.ray_address == "head:6380"
    assert str(s.data_dir) == "/var/lib/vidsight"
    assert s.ingest.sample_fps == 2.5


def test_defaults_are_the_embedded_ones(monkeypatch):
    for name in ("VIDSIGHT_REDIS_URL", "VIDSIGHT_RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert s.redis_url is None and s.ray_address is None


def test_out_of_range_and_unknown_settings_are_rejected_by_name(monkeypatch):
    monkeypatch.setenv("VIDSIGHT_INGEST__SAMPLE_FPS", "-1")
    with pytest.raises(ValidationError, match="sample_fps"):
        Settings()
    monkeypatch.delenv("VIDSIGHT_INGEST__SAMPLE_FPS")
    with pytest.raises(ValidationError, match="no_such_field"):
        Settings(ingest={"no_such_field": 1})

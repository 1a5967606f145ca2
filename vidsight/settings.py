"""The one settings object. Built once in `main` and passed down by section.

Environment: prefix `VIDSIGHT_`, nested delimiter `__`, e.g.
`VIDSIGHT_REDIS_URL=redis://host:6379/0`, `VIDSIGHT_INGEST__SAMPLE_FPS=2`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.alerts.config import AlertSettings
from api.config import ApiSettings
from compressor.config import CompressorSettings
from encoder.config import EncoderSettings
from encoder.text.config import TextSettings
from ingest.config import IngestSettings
from llm.config import LLMSettings
from memory.config import MemorySettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIDSIGHT_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(Path(".vidsight"), description="Root of everything vidsight writes.")
    redis_url: str | None = Field(
        None, description="Redis server; None starts a private embedded Redis under data_dir."
    )
    ray_address: str | None = Field(None, description="Ray cluster address; None starts a local Ray.")

    ingest: IngestSettings = Field(default_factory=IngestSettings)
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    compressor: CompressorSettings = Field(default_factory=CompressorSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    text: TextSettings = Field(default_factory=TextSettings)

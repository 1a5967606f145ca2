"""The production shape stays valid: docker-compose.yml parses and names the services we rely on."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid_for_docker_compose():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed (scripts/setup.sh installs it)")
    result = subprocess.run([tool, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_compose_runs_redis_ray_head_gpu_worker_and_api():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "ray-head", "gpu-worker", "api"} <= set(services)
    api_env = services["api"]["environment"]
    assert api_env["VIDSIGHT_REDIS_URL"].startswith("redis://redis:")
    assert api_env["VIDSIGHT_RAY_ADDRESS"].startswith("ray-head:")
    assert "appendonly" in " ".join(services["redis"]["command"])
    assert services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == [
        "gpu"
    ]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "scripts/test.sh" in readme.split("```")[1]
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()

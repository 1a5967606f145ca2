"""schemathesis against the running server's OpenAPI schema: generated requests (valid and not)
never get a 5xx. Bounded: a few examples per operation. POST /v1/streams is left out (a generated
rtsp://host would start a real reader against a random host); its checks are in test_input_checks."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_no_generated_request_gets_a_server_error(server, ingested, tmp_path):
    cli = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    token = server.fresh_key("admin")
    result = subprocess.run(
        [
            cli,
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "4",
            "--phases",
            "examples,fuzzing",
            "--seed",
            "7",
            "--workers",
            "1",
            "--request-timeout",
            "60",
            "--generation-with-security-parameters",
            "false",
            "--rate-limit",
            "40/s",
            "--exclude-path-regex",
            r"^/v1/streams$",
            "-H",
            f"Authorization: Bearer {token}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:] + server.log_tail()
    assert " passed" in result.stdout and "Tested: 0" not in result.stdout

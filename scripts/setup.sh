#!/usr/bin/env bash
# Installs everything vidsight needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (ffmpeg, redis, mosquitto, GStreamer RTSP server, festival, chromium),
# a virtualenv in .venv with the CPU build of torch pinned BEFORE the project (a bare `torch`
# requirement on an empty environment would pull a multi-GB CUDA build), then the project.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v mosquitto >/dev/null || missing+=(mosquitto)
command -v festival >/dev/null || missing+=(festival festvox-us-slt-hts)
command -v chromium >/dev/null || missing+=(chromium)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null \
   || ! command -v gst-inspect-1.0 >/dev/null || ! gst-inspect-1.0 x264enc >/dev/null 2>&1; then
  missing+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base
            gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.vidsight-installed
want=$(cat pyproject.toml | sha1sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0"
  .venv/bin/pip install -q -e ".[dev,text]"
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv/bin/vidsight)"

#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs (scripts/setup.sh), starts the
# services the tests use (Redis on 6379, Mosquitto on 1883) when they are not running, then lint,
# types and pytest. Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -k evs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  echo "test: starting redis-server on 6379"
  mkdir -p /tmp/vidsight-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp/vidsight-redis \
    --logfile /tmp/vidsight-redis/redis.log
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "test: starting mosquitto on 1883"
  mosquitto -d -p 1883 2>/dev/null || mosquitto -d
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
. .venv/bin/activate
echo "test: ruff"
ruff check .
ruff format --check .
echo "test: mypy"
mypy
echo "test: pytest"
# pytest exits 5 when it collects no tests: that must fail CI, and `set -e` makes it so.
pytest -q -p no:cacheprovider --durations=15 "$@"

#!/usr/bin/env bash
# A Redis server on loopback for the tests (the Celery inbox, Redis stores): port 6390 unless
# BOTS_TEST_REDIS_PORT says otherwise. Installs Debian's redis-server with apt-get when it is
# missing and starts it when nothing answers on that port; says so and fails when it cannot.
set -euo pipefail
PORT="${BOTS_TEST_REDIS_PORT:-6390}"
if ! command -v redis-server >/dev/null; then
  echo "installing Debian's redis-server for the tests (apt-get)..."
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  if ! { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q redis-server >/dev/null; }; then
    echo "error: could not install redis-server with apt-get; the Celery and Redis tests need it" >&2
    exit 1
  fi
fi
if redis-cli -p "$PORT" ping >/dev/null 2>&1; then
  exit 0
fi
redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no --daemonize yes \
  --logfile "${TMPDIR:-/tmp}/bots-test-redis-$PORT.log" --databases 32
for _ in $(seq 50); do
  if redis-cli -p "$PORT" ping >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.1
done
echo "error: redis-server did not answer on 127.0.0.1:$PORT" >&2
exit 1

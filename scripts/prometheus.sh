#!/usr/bin/env bash
# Debian's Prometheus server for the metrics test (tests/e2e/test_prometheus.py starts it on loopback itself):
# installs it with apt-get when /usr/bin/prometheus is missing (the package's own service is not needed);
# says so and fails when it cannot.
set -euo pipefail
if [ -x /usr/bin/prometheus ]; then
  exit 0
fi
echo "installing Debian's prometheus for the metrics test (apt-get)..."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
if ! { install || { $SUDO apt-get update -q >/dev/null && install; }; }; then
  echo "error: could not install prometheus with apt-get; tests/e2e/test_prometheus.py needs /usr/bin/prometheus" >&2
  exit 1
fi

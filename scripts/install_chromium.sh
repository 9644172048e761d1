#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; its own browser download is not used).
# Installs it with apt-get when /usr/bin/chromium is missing; says so and fails when it cannot.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "installing Debian's chromium for the browser tests (apt-get)..."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if ! { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }; then
  echo "error: could not install chromium with apt-get; the browser tests (tests/e2e/test_browser.py) need /usr/bin/chromium" >&2
  exit 1
fi

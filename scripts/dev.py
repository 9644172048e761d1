"""`make run`: the example bots under gunicorn on :8000 and the local Workplace (emulator) on :8001,
wired to each other. `make run RESET=1` (or `scripts/dev.py --reset`) starts from a fresh seeded
emulator database.

Stops both on Ctrl-C; if either exits, the other is stopped too.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BANNER = """
  Workplace (local):  http://127.0.0.1:8001/work   <- open this: pick who you are, chat with the bots
  Admin Panel:        http://127.0.0.1:8001/admin  integrations, tokens, webhooks, permissions
  Bot server:         http://127.0.0.1:8000        webhooks at /webhooks/<bot>
  Ctrl-C stops both.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reset", action="store_true", help="start the emulator from a fresh seeded database")
    args = parser.parse_args(argv)
    emulator = [sys.executable, "-m", "emulator", "--port", "8001"] + (["--reset"] if args.reset else [])
    processes = [
        subprocess.Popen(emulator, cwd=ROOT),
        subprocess.Popen([str(BIN / "gunicorn"), "app:app", "--bind", "127.0.0.1:8000", "--workers", "1",
                          "--threads", "8", "--worker-class", "gthread", "--graceful-timeout", "5"], cwd=ROOT),
    ]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if _up(("http://127.0.0.1:8001/_emulator/calls", "http://127.0.0.1:8000/healthz"), processes):
            print(BANNER, flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for p in processes:
            if p.poll() is None:
                p.terminate()
        for p in processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    return max((p.returncode or 0) for p in processes)


def _up(urls: tuple[str, ...], processes: list[subprocess.Popen], timeout: float = 30) -> bool:
    """Wait until every URL answers (any HTTP status), or a process exits, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    waiting = list(urls)
    while waiting and time.monotonic() < deadline and all(p.poll() is None for p in processes):
        try:
            urllib.request.urlopen(waiting[0], timeout=1).close()
            waiting.pop(0)
        except urllib.error.HTTPError:
            waiting.pop(0)
        except OSError:
            time.sleep(0.2)
    return not waiting


if __name__ == "__main__":
    sys.exit(main())

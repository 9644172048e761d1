"""`make run`: the example bots under gunicorn on :8000 and the local emulator on :8001, together.

Stops both on Ctrl-C; if either exits, the other is stopped too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def main() -> int:
    processes = [
        subprocess.Popen([sys.executable, "-m", "emulator", "--port", "8001"], cwd=ROOT),
        subprocess.Popen([str(BIN / "gunicorn"), "app:app", "--bind", "127.0.0.1:8000", "--workers", "1",
                          "--threads", "8", "--worker-class", "gthread", "--graceful-timeout", "5"], cwd=ROOT),
    ]
    print("bots on http://127.0.0.1:8000 (webhooks at /webhooks/<bot>), emulator on http://127.0.0.1:8001\n"
          "try, in another terminal:  .venv/bin/flask --app app bots simulate helpdesk help", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
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


if __name__ == "__main__":
    sys.exit(main())

"""`make run`: the example bots under gunicorn on :8000 and the local Workplace (emulator) on :8001, wired to
each other; a bot module saved in handlers/ is provisioned and served within seconds (bots/dev/runner.py).

`make run RESET=1` (or `scripts/dev.py --reset`) starts from a fresh seeded emulator database. Other ports:
`--bot-port`/`--emulator-port` (or DEV_BOT_PORT/DEV_EMULATOR_PORT); another project folder: `--root`.
Ctrl-C stops both.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.dev.runner import Options, Runner  # noqa: E402  (after the checkout is on sys.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reset", action="store_true", help="start the emulator from a fresh seeded database")
    parser.add_argument("--bot-port", type=int, default=int(os.environ.get("DEV_BOT_PORT", 8000)))
    parser.add_argument("--emulator-port", type=int, default=int(os.environ.get("DEV_EMULATOR_PORT", 8001)))
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the project: app.py, handlers/ and .env (default: this checkout)")
    args = parser.parse_args(argv)
    options = Options(args.root.resolve(), args.bot_port, args.emulator_port, args.reset)
    return Runner(options).run()


if __name__ == "__main__":
    sys.exit(main())

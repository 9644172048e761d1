"""``python -m emulator [--port 8001] [--db data/emulator.sqlite3] [--reset]``: serve the local Workplace.

Reads the example bots' credentials from the environment and ``.env`` (the bot server reads the
same), seeds a new database, and serves the Graph API, the Admin Panel and Work Chat.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from dotenv import load_dotenv
from werkzeug.serving import make_server

from .app import create_app, emulator_of
from .store import StaleDatabase

ROOT = Path(__file__).resolve().parent.parent


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """Parse ``argv`` (default: the command line) and serve until interrupted; ``prog`` names the command
    in ``--help`` (``bots emulator`` runs this too)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--db", default=os.environ.get("EMULATOR_DB") or str(ROOT / "data" / "emulator.sqlite3"),
                        help="the SQLite file (EMULATOR_DB); ':memory:' keeps nothing")
    parser.add_argument("--reset", action="store_true", help="start from a fresh seeded database")
    args = parser.parse_args(argv)
    if os.environ.get("DOTENV", "1") != "0":
        load_dotenv(ROOT / ".env")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        app = create_app(db=args.db, reset=args.reset)
    except StaleDatabase as error:
        raise SystemExit(f"error: {error}") from None
    names = ", ".join(i.name for i in emulator_of(app).integrations.all()) or "none"
    logging.getLogger("emulator").info("Workplace emulator on http://%s:%d (integrations: %s; database %s)",
                                       args.host, args.port, names, args.db)
    make_server(args.host, args.port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()

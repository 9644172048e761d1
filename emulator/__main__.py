"""``python -m emulator [--port 8001]``: serve the local Workplace for the credentials in .env."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dotenv import load_dotenv
from werkzeug.serving import make_server

from .app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    load_dotenv(Path(__file__).resolve().parent.parent / ".env")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_app()
    names = sorted({i.name for i in app.extensions["emulator"].integrations.values()})
    logging.getLogger("emulator").info("serving the Graph API on http://%s:%d for: %s", args.host, args.port,
                                       ", ".join(names) or "no integrations (set <BOT>_ACCESS_TOKEN)")
    make_server(args.host, args.port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()

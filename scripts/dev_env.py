"""Write a .env with fresh local credentials for every example bot, so `make run` needs no account.

The bot server and the local emulator both read it: the emulator plays Workplace for these
integrations. An existing .env is never overwritten.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOTS = ("helpdesk", "docs")


def main(path: Path = ROOT / ".env") -> int:
    if path.exists():
        print(f"{path.name} exists; keeping it")
        return 0
    lines = ["# Local development credentials written by `make run` (scripts/dev_env.py).",
             "GRAPH_API_URL=http://127.0.0.1:8001"]
    for bot in BOTS:
        prefix = bot.upper()
        lines += [f"{prefix}_APP_SECRET={secrets.token_hex(16)}", f"{prefix}_ACCESS_TOKEN={secrets.token_urlsafe(32)}",
                  f"{prefix}_VERIFY_TOKEN={secrets.token_urlsafe(12)}", f"{prefix}_APP_ID={secrets.randbelow(10**15)}"]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    print(f"wrote {path.name} with local credentials for: {', '.join(BOTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

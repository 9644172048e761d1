"""Write a .env with fresh local credentials for every example bot, so `make run` needs no account.

The bot server and the local emulator both read it: the emulator plays Workplace for these
integrations. An existing .env is never overwritten; it only gains the development settings it lacks
(EMULATOR_DEV_TOKEN for the emulator's provisioning API, MISSING_SETTINGS=skip).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.dev import envfile  # noqa: E402  (after the checkout is on sys.path)

BOTS = ("helpdesk", "docs")


def main(path: Path = ROOT / ".env") -> int:
    if path.exists():
        envfile.ensure_dev_settings(path)
        print(f"{path.name} exists; keeping it")
        return 0
    envfile.create(path, BOTS)
    print(f"wrote {path.name} with local credentials for: {', '.join(BOTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the bots of a handlers package declare, as JSON: ``python -m bots.dev.catalog handlers http://127.0.0.1:8000``.

The dev runner runs this in a fresh interpreter after each save, so a module is read as it is on disk now and a
broken one cannot harm the runner; a module that fails to import is logged on stderr and left out.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from ..bot import Bot
from ..discovery import find_bots
from ..manifest import manifest

#: The Get Started payload a bot that declares none is given in the local Workplace, so opening its chat
#: delivers a postback (and the log then names the decorator that answers it).
DEFAULT_GET_STARTED = "GET_STARTED"


def dev_profile(bot: Bot) -> dict[str, Any]:
    """The bot's Messenger profile, with a Get Started button when it declares none but takes chat messages."""
    profile = dict(bot.profile())
    chats = any(listener.kind in ("message", "quick_reply", "postback") for listener in bot.listeners)
    if "get_started" not in profile and (chats or bot.discoverable):
        profile["get_started"] = {"payload": DEFAULT_GET_STARTED}
    return profile


def describe(bot: Bot, callback_base: str) -> dict[str, Any]:
    """The bot's manifest (webhooks pointing at ``callback_base``) and its dev profile."""
    return {"name": bot.name, "manifest": manifest(bot, callback_base), "profile": dev_profile(bot)}


def main(argv: list[str] | None = None) -> int:
    """Print ``{"bots": [...]}`` for the package and callback base in ``argv``."""
    parser = argparse.ArgumentParser(prog="python -m bots.dev.catalog", description=__doc__)
    parser.add_argument("package", nargs="?", default="handlers", help="the package of bot modules")
    parser.add_argument("callback_base", nargs="?", default="http://127.0.0.1:8000", help="the bot server's URL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    bots = find_bots(args.package, skip_broken=True)
    print(json.dumps({"bots": [describe(bot, args.callback_base) for bot in bots]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The application: ``create_app()`` for tests and tools, ``app`` for ``gunicorn app:app``.

Serves every bot defined in ``handlers/`` (or those ``BOTS`` names), with settings from the
environment and ``.env``. A bot whose settings are missing stops start-up, unless ``MISSING_SETTINGS=skip``
(what ``make run`` writes in its .env): then the others are served and the log says how to fix each one left out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from dotenv import load_dotenv
from flask import Flask

from bots import Bot, ConfigError, notices
from bots.config import selected_bots, skips_missing
from bots.deployment import Deployment, build
from bots.discovery import find_bots, select
from bots.flask import make_app

#: The per-bot settings whose absence ``MISSING_SETTINGS=skip`` or ``BOTS`` gets round (the hint is for those only).
BOT_SETTINGS = ("_APP_SECRET", "_ACCESS_TOKEN", "_VERIFY_TOKEN")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` overrides the environment; besides settings it may hold
    ``BOTS`` (a list of ``Bot`` objects instead of names), ``HANDLERS`` (the package to search),
    ``ENVIRON`` (a mapping used instead of ``os.environ``), ``DOTENV`` (False: do not read ``.env``),
    ``EXECUTOR`` and ``GRAPH_SESSION_FACTORY`` (the test kit's hooks). ``DOTENV=0`` in the
    environment also skips ``.env``, for tests that start the server as a process."""
    bots, env, hooks = configure(config)
    return make_app(bots, env, **hooks)


def create_deployment(config: Mapping[str, Any] | None = None) -> Deployment:
    """The same bots and settings as :func:`create_app`, without a web app: what a Celery worker runs."""
    bots, env, hooks = configure(config)
    return build(bots, env, **hooks)


def configure(config: Mapping[str, Any] | None) -> tuple[list[Bot], dict[str, str], dict[str, Any]]:
    """The bots, the settings and the test kit's hooks ``config`` and the environment (and ``.env``) give."""
    config = dict(config or {})
    if config.pop("DOTENV", os.environ.get("DOTENV", "1") != "0"):
        load_dotenv(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env"))
    environ = config.pop("ENVIRON", os.environ)
    hooks = {"executor": config.pop("EXECUTOR", None), "session_factory": config.pop("GRAPH_SESSION_FACTORY", None)}
    package = config.pop("HANDLERS", "handlers")
    bots = config.pop("BOTS", None)
    env = {**environ, **{key: str(value) for key, value in config.items()}}
    if isinstance(bots, (list, tuple)) and all(isinstance(bot, Bot) for bot in bots):
        return list(bots), env, hooks
    if bots is not None:
        env["BOTS"] = bots if isinstance(bots, str) else ",".join(bots)
    return select(find_bots(package, skips_missing(env)), selected_bots(env), package), env, hooks


def __getattr__(name: str) -> Flask:
    """``app`` is built on first use, so importing ``create_app`` never needs the settings."""
    if name != "app":
        raise AttributeError(name)
    try:
        application = create_app()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        if error.variable.endswith(BOT_SETTINGS) and str(error).startswith(f"{error.variable}: is not set"):
            print(f"hint: {notices.SKIP_HINT}", file=sys.stderr)
        raise SystemExit(3) from None
    globals()["app"] = application
    return application

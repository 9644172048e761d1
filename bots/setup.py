"""Set a bot up on Workplace: push its Messenger profile and subscribe the webhooks it needs.

What ``flask bots setup`` runs. The topics and fields come from the bot's handlers; the
subscription calls use the app token ``APP_ID|APP_SECRET``, as ``/app/subscriptions`` requires.
"""

from __future__ import annotations

from typing import Any

from .envelope import KNOWN_CHANGES, KNOWN_MESSAGING
from .errors import ConfigError
from .runtime import BotRuntime


def all_fields(object: str) -> list[str]:
    """Every field this version knows for ``object``."""
    fields = [field for topic, field in KNOWN_CHANGES if topic == object]
    return [*KNOWN_MESSAGING, *fields] if object == "page" else fields


def subscriptions(runtime: BotRuntime, callback_base: str) -> list[dict[str, Any]]:
    """The ``/app/subscriptions`` bodies for the bot's handlers, one per topic, with per-topic callback URLs."""
    base = callback_base.rstrip("/")
    bodies = []
    for object, fields in sorted(runtime.bot.subscriptions().items()):
        bodies.append({"object": object, "fields": ",".join(sorted(fields) or all_fields(object)),
                       "callback_url": f"{base}/webhooks/{runtime.bot.name}/{object}",
                       "verify_token": runtime.settings.verify_token, "include_values": True})
    return bodies


def setup(runtime: BotRuntime, callback_base: str) -> list[str]:
    """Push the profile and subscribe every topic; returns one line per thing done, with no secrets."""
    settings = runtime.settings
    if not settings.app_id:
        raise ConfigError(f"{runtime.bot.name.upper()}_APP_ID", "is needed to subscribe webhooks: copy the App ID "
                          "from the Admin Panel")
    if not callback_base.startswith("https://") and not callback_base.startswith("http://127.0.0.1"):
        raise ValueError("the callback URL must be https:// (Workplace calls it over the internet)")
    done = []
    profile = runtime.bot.profile()
    if profile:
        runtime.client.post("me/messenger_profile", profile)
        done.append(f"profile: set {', '.join(profile)}")
    app_token = f"{settings.app_id}|{settings.app_secret}"
    for body in subscriptions(runtime, callback_base):
        runtime.client.request("POST", "app/subscriptions", json=body, token=app_token)
        done.append(f"subscribed {body['object']} ({body['fields']}) -> {body['callback_url']}")
    return done

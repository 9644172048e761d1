"""A bot's manifest: exactly what an admin enters in the Admin Panel to create its integration.

Permissions, topics and fields are derived from the bot's handlers; the Admin Panel's permission
names are ours where the public record is silent, and kept in ``PERMISSIONS``.
"""

from __future__ import annotations

from typing import Any

from .bot import Bot
from .setup import all_fields

#: Admin Panel permission names, and what needs each.
PERMISSIONS = {
    "chat": "Message any member",
    "mention": "Mention bot",
    "group_read": "Read group content",
    "group_manage": "Manage group content",
    "link": "Link previews",
    "user": "Read user status",
    "workplace_security": "Read security logs",
}


def permissions(bot: Bot) -> list[str]:
    """The permissions ``bot`` needs, from its handlers and settings, in the Admin Panel's order."""
    kinds = {listener.kind for listener in bot.listeners}
    topics = bot.subscriptions()
    needed = set(bot.extra_permissions)
    if bot.discoverable or kinds & {"message", "quick_reply", "postback"} or topics.get("page", set()) - {"mention"}:
        needed.add(PERMISSIONS["chat"])
    if "mention" in kinds or "mention" in topics.get("page", set()):
        needed |= {PERMISSIONS["mention"], PERMISSIONS["group_manage"]}
    if "group" in topics:
        needed |= {PERMISSIONS["group_read"], PERMISSIONS["group_manage"]}
    if "link" in topics:
        needed.add(PERMISSIONS["link"])
    for topic in ("user", "workplace_security"):
        if topic in topics:
            needed.add(PERMISSIONS[topic])
    order = list(PERMISSIONS.values())
    return sorted(needed, key=lambda name: (order.index(name) if name in order else len(order), name))


def manifest(bot: Bot, callback_base: str) -> dict[str, Any]:
    """The integration as the Admin Panel asks for it, callback URLs included; no secret values."""
    base = callback_base.rstrip("/")
    prefix = bot.name.upper()
    return {
        "name": bot.name,
        "description": bot.description,
        "discoverable": bot.discoverable,
        "permissions": permissions(bot),
        "webhooks": [
            {"topic": topic, "fields": sorted(fields) or all_fields(topic),
             "callback_url": f"{base}/webhooks/{bot.name}/{topic}",
             "verify_token": f"the value of {prefix}_VERIFY_TOKEN"}
            for topic, fields in sorted(bot.subscriptions().items())
        ],
        "link_preview_domains": sorted({registration.domain for registration in bot.link_previews}),
        "settings": [f"{prefix}_APP_ID", f"{prefix}_APP_SECRET", f"{prefix}_ACCESS_TOKEN", f"{prefix}_VERIFY_TOKEN"],
    }


def as_text(data: dict[str, Any]) -> str:
    """The manifest as a person reads it beside the Admin Panel."""
    lines = [f"Integration: {data['name']}", f"  Description: {data['description'] or '(none)'}",
             f"  Visibility: {'discoverable' if data['discoverable'] else 'not discoverable'}",
             f"  Permissions: {', '.join(data['permissions']) or '(none)'}"]
    for hook in data["webhooks"]:
        lines.append(f"  Webhook {hook['topic']}: {hook['callback_url']}  fields: {', '.join(hook['fields'])}  "
                     f"verify token: {hook['verify_token']}")
    if data["link_preview_domains"]:
        lines.append(f"  Link preview domains: {', '.join(data['link_preview_domains'])}")
    lines.append(f"  Then copy into .env: {', '.join(data['settings'])}")
    return "\n".join(lines)

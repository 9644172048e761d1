"""Webhook subscriptions by API: ``/app/subscriptions``, with the app token and the GET handshake."""

from __future__ import annotations

from typing import Any

from .calls import Call, GraphError, need, state
from .integrations import TOPICS, Subscription, field_permission
from .webhooks import handshake


# /app/subscriptions ----------------------------------------------------------------------------
def subscriptions_list(call: Call, _: list[str]) -> dict[str, Any]:
    """The integration's webhook subscriptions, as /app/subscriptions lists them."""
    found = state().integrations.subscriptions(call.integration.id).values()
    return {"data": [{"object": s.topic, "callback_url": s.callback_url, "active": True,
                      "fields": [{"name": f, "version": "v18.0"} for f in s.fields]} for s in found]}


def subscribe(call: Call, _: list[str]) -> dict[str, Any]:
    """Subscribe a topic by API, after the same GET handshake the Admin Panel runs."""
    body = call.body
    topic = need(body.get("object"), "object")
    if topic not in TOPICS:
        raise GraphError(f"(#100) object must be one of {', '.join(TOPICS)}", 100)
    fields = body.get("fields") or []
    fields = [f.strip() for f in fields.split(",")] if isinstance(fields, str) else list(fields)
    unknown = [f for f in fields if f not in TOPICS[topic]]
    if not fields or unknown:
        raise GraphError(f"(#100) fields for {topic} are some of {', '.join(TOPICS[topic])}", 100)
    missing = sorted({field_permission(topic, f) for f in fields} - set(call.integration.permissions))
    if missing:
        raise GraphError(f"(#200) Subscribing to these fields requires: {', '.join(missing)}", 200, 403)
    url, token = need(body.get("callback_url"), "callback_url"), need(body.get("verify_token"), "verify_token")
    problem = handshake(url, token)
    if problem:
        raise GraphError(f"(#2200) Callback verification failed: {problem}", 2200)
    state().integrations.subscribe(call.integration.id, Subscription(topic, url, token, fields))
    return {"success": True}


def unsubscribe(call: Call, _: list[str]) -> dict[str, Any]:
    """Remove one topic's subscription (``object``), or all of them."""
    state().integrations.unsubscribe(call.integration.id, call.body.get("object") or None)
    return {"success": True}

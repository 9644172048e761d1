"""Integrations made from a bot's manifest (``bots manifest --json``) as an admin makes them in the Admin Panel:
the one algorithm behind the dev provisioning API (``make run``) and the pytest plugin's ``workplace`` fixture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .integrations import PERMISSIONS, TOPICS, Integration, Subscription
from .webhooks import handshake

if TYPE_CHECKING:
    from .app import Emulator


def settings_of(manifest: dict[str, Any], profile: dict[str, Any], *, list_chat_bots: bool = False) -> dict[str, Any]:
    """The integration settings a manifest gives: description, the permissions the local Workplace knows,
    visibility (a bot listed in the directory needs to message people; ``list_chat_bots`` lists every bot that
    may, as the seeded ones are, whatever its manifest says), link-preview domains and profile."""
    permissions = [name for name in PERMISSIONS if name in (manifest.get("permissions") or [])]
    listed = list_chat_bots or bool(manifest.get("discoverable"))
    return {"description": str(manifest.get("description") or ""), "permissions": permissions,
            "discoverable": listed and "Message any member" in permissions,
            "link_domains": sorted(str(d) for d in manifest.get("link_preview_domains") or []), "profile": profile}


def create(state: Emulator, manifest: dict[str, Any], profile: dict[str, Any], *, require_proof: bool = True,
           list_chat_bots: bool = False) -> Integration:
    """A new integration with fresh credentials, in every group as the seeded bots are."""
    integration = state.integrations.create(str(manifest["name"]), require_proof=require_proof,
                                            **settings_of(manifest, profile, list_chat_bots=list_chat_bots))
    for group in state.community.groups():
        state.community.add_member(group["id"], integration.page_id)
    return integration


def refresh(state: Emulator, integration: Integration, settings: dict[str, Any] | None) -> Integration:
    """``integration`` with ``settings`` applied (None: as it is), holding an access token; its credentials kept."""
    if settings is not None:
        state.integrations.update(integration.id, **{**settings, "discoverable": int(settings["discoverable"])})
    if not integration.access_token:
        state.integrations.reset_token(integration.id)
    return state.integrations.get(integration.id) or integration


def save_webhooks(state: Emulator, integration: Integration, hooks: list[Any],
                  token: str) -> tuple[list[str], dict[str, str]]:
    """Save each manifest webhook as the Admin Panel's Save does, only after its handshake succeeds, and drop the
    topics no longer wanted: the topics saved, and why each other one was not."""
    saved: list[str] = []
    problems: dict[str, str] = {}
    for hook in hooks:
        topic = str(hook.get("topic")) if isinstance(hook, dict) else "?"
        problem = _save(state, integration, hook, token) if isinstance(hook, dict) else "a webhook must be an object"
        if problem:
            problems[topic] = problem
        else:
            saved.append(topic)
    for topic in set(state.integrations.subscriptions(integration.id)) - set(saved) - set(problems):
        state.integrations.unsubscribe(integration.id, topic)
    return saved, problems


def _save(state: Emulator, integration: Integration, hook: dict[str, Any], token: str) -> str | None:
    """Subscribe one manifest webhook after its handshake; why it was not saved, or None."""
    topic, url = str(hook.get("topic")), str(hook.get("callback_url") or "")
    fields = [name for name in TOPICS.get(topic, ()) if name in (hook.get("fields") or [])]
    if not fields:
        return f"the local Workplace has no webhook {topic} with fields {hook.get('fields')}"
    problem = handshake(url, token)
    if problem:
        return f"the verification request failed: {problem}"
    state.integrations.subscribe(integration.id, Subscription(topic, url, token, fields))
    return None

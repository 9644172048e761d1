"""The Send API and everything about chats: ``/me/messages`` (every recipient form and sender
action), ``/me/messenger_profile``, ``/me/subscribed_apps``, and group chats' name and participants.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .calls import Call, GraphError, find_person, names, need, state
from .integrations import Integration

logger = logging.getLogger("emulator")

SENDER_ACTIONS = ("mark_seen", "typing_on", "typing_off")
MAX_TEXT = 2000


# /me/messages ----------------------------------------------------------------------------------
def send(call: Call, _: list[str]) -> dict[str, Any]:
    """The Send API: a message or a sender action, to a person, several people or a thread."""
    body, bot = call.body, call.integration
    recipient = body.get("recipient")
    if isinstance(recipient, str):
        try:
            recipient = json.loads(recipient)
        except ValueError:
            recipient = None
    if not isinstance(recipient, dict) or sum(bool(recipient.get(k)) for k in ("id", "ids", "thread_key")) != 1:
        raise GraphError("(#100) The parameter recipient is required: exactly one of id, ids or thread_key", 100)
    action, message = body.get("sender_action"), body.get("message")
    if (action is None) == (message is None):
        raise GraphError("(#100) Must send either message or sender_action", 100)
    if action is not None and action not in SENDER_ACTIONS:
        raise GraphError(f"(#100) sender_action must be one of {', '.join(SENDER_ACTIONS)}", 100)
    checked = _check_message(message) if message is not None else None
    thread_id, answer = _thread_for(bot, recipient)
    community = state().community
    if action == "mark_seen":
        community.mark_seen(thread_id)
        return {"recipient_id": answer["recipient_id"]}
    if checked is None:  # a sender action: exactly one of the two was given
        community.set_typing(thread_id, action == "typing_on")
        state().live.typing(thread_id, bot.name if action == "typing_on" else None)
        return {"recipient_id": answer["recipient_id"]}
    stored = community.add_message(thread_id, bot.page_id, checked)
    state().activity.bot_sent(bot, thread_id, stored["id"])
    _show(bot.name, answer["recipient_id"], checked)
    return {**answer, "message_id": stored["id"]}


def _check_message(message: object) -> dict[str, Any]:
    """``message`` if the Send API would take it; else the code-100 refusal saying why."""
    if not isinstance(message, dict) or not (message.get("text") or message.get("attachment")):
        raise GraphError("(#100) message must have text or an attachment", 100)
    text = message.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        raise GraphError(f"(#100) message.text must be text of at most {MAX_TEXT} characters", 100)
    replies = message.get("quick_replies", [])
    if not isinstance(replies, list) or len(replies) > 13:
        raise GraphError("(#100) message.quick_replies must be a list of at most 13", 100)
    return message


def _thread_for(bot: Integration, recipient: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The thread a send goes to, opening it when needed, and the answer's recipient fields."""
    community = state().community
    if recipient.get("thread_key"):
        key = str(recipient["thread_key"])
        thread = community.thread(key)
        if thread is None or bot.page_id not in thread["participants"]:
            raise GraphError(f"(#100) No thread {key} that this integration takes part in", 100, subcode=2018001)
        return key, {"recipient_id": key}
    if recipient.get("id"):
        person = find_person(str(recipient["id"]))
        thread, _ = community.direct_thread(person["id"], bot.page_id)
        return thread["id"], {"recipient_id": person["id"]}
    ids = recipient["ids"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise GraphError("(#100) recipient.ids must be a list of people's ids", 100)
    people = [find_person(i)["id"] for i in ids]
    thread = community.open_thread([bot.page_id, *people])
    return thread["id"], {"recipient_id": thread["id"], "thread_key": thread["id"]}



def _show(bot: str, to: str, message: dict[str, Any]) -> None:
    buttons = " ".join(f"[{q.get('title')}]" for q in message.get("quick_replies", []) if isinstance(q, dict))
    logger.info("[chat] %s -> %s: %s %s", bot, to, "(text)" if message.get("text") else "(attachment)", buttons)


# /me/messenger_profile, /me, /me/subscribed_apps ----------------------------------------------
PROFILE_FIELDS = ("get_started", "greeting", "persistent_menu", "ice_breakers", "whitelisted_domains")
#: What Graph answers a call to the removed Thread Settings API [3rd: code 12 is Graph's "deprecated API"].
THREAD_SETTINGS_GONE = ("(#12) The thread_settings endpoint is deprecated: set get_started, greeting and "
                        "persistent_menu with the Messenger Profile API, POST /me/messenger_profile")


def profile_set(call: Call, _: list[str]) -> dict[str, Any]:
    """Merge get_started, greeting, persistent_menu ... into the bot's Messenger profile."""
    unknown = sorted(set(call.body) - set(PROFILE_FIELDS))
    if unknown or not call.body:
        raise GraphError(f"(#100) messenger_profile takes {', '.join(PROFILE_FIELDS)}; got {unknown or 'nothing'}", 100)
    get_started = call.body.get("get_started")
    if get_started is not None and not (isinstance(get_started, dict) and get_started.get("payload")):
        raise GraphError("(#100) get_started must be {\"payload\": ...}", 100)
    profile = {**call.integration.profile, **call.body}
    state().integrations.update(call.integration.id, profile=profile)
    return {"result": "success"}


def profile_get(call: Call, _: list[str]) -> dict[str, Any]:
    """The profile fields asked for (all by default)."""
    wanted = names(call.body.get("fields"), "fields") or list(PROFILE_FIELDS)
    return {"data": [{k: v for k, v in call.integration.profile.items() if k in wanted}]}


def profile_delete(call: Call, _: list[str]) -> dict[str, Any]:
    """Remove the named profile fields."""
    fields = names(call.body.get("fields"), "fields")
    profile = {k: v for k, v in call.integration.profile.items() if k not in fields}
    state().integrations.update(call.integration.id, profile=profile)
    return {"result": "success"}


def thread_settings(call: Call, _: list[str]) -> dict[str, Any]:
    """The Thread Settings API, which the Messenger Profile API replaced: refused as Graph refuses a
    removed endpoint (code 12), saying what to call instead (docs/workplace-fidelity.md)."""
    raise GraphError(THREAD_SETTINGS_GONE, 12)


def subscribed_apps(call: Call, _: list[str]) -> dict[str, Any]:
    """The app subscribed to the bot's page, with its page fields."""
    page = state().integrations.subscriptions(call.integration.id).get("page")
    return {"data": [{"id": call.integration.id, "name": call.integration.name,
                      "subscribed_fields": page.fields if page else []}]}


def subscribe_app(call: Call, _: list[str]) -> dict[str, Any]:
    """Subscribing the page to the app: always already done in the emulator."""
    return {"success": True}


# threads ---------------------------------------------------------------------------------------
def _own_thread(call: Call, key: str) -> dict[str, Any]:
    thread = state().community.thread(key)
    if thread is None or call.integration.page_id not in thread["participants"]:
        raise GraphError(f"(#100) No thread {key} that this integration takes part in", 100, subcode=2018001)
    if not thread["is_group"]:
        raise GraphError("(#100) Only group chats have a name and participants to change", 100)
    return thread


def rename_thread(call: Call, args: list[str]) -> dict[str, Any]:
    """Name a group chat the bot takes part in."""
    _own_thread(call, args[0])
    name = need(call.body.get("name"), "name")
    state().community.rename(args[0], str(name)[:250])
    return {"success": True}


def participants(call: Call, args: list[str]) -> dict[str, Any]:
    """Add (POST) or remove (DELETE) people in a group chat the bot takes part in."""
    _own_thread(call, args[0])
    people = call.body.get("to")
    people = json.loads(people) if isinstance(people, str) and people.startswith("[") else people
    if not isinstance(people, list) or not people:
        raise GraphError("(#100) The parameter to is required: a list of people's ids", 100)
    ids = [find_person(str(p))["id"] for p in people]
    community = state().community
    (community.add_participants if call.method == "POST" else community.remove_participants)(args[0], ids)
    return {"success": True}


def participants_list(call: Call, args: list[str]) -> dict[str, Any]:
    """Who takes part in a group chat."""
    thread = _own_thread(call, args[0])
    names = state().community.names()
    return {"data": [{"id": m, "name": names.get(m, m)} for m in thread["participants"]]}

"""The Graph API the framework calls (PROTOCOL.md section 5), checked as Workplace checks it.

Every call is authorised in a fixed order — access token (or app token for ``/app/subscriptions``),
enabled state, server IP allow list, appsecret_proof, injected faults, permission — and refused
with a Graph-shaped error at the first that fails. Calls that name an integration are counted
for its Last API request figures and answered with usage headers; accepted calls are recorded
for ``GET /_emulator/calls`` (the console and tests read it).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from .integrations import TOPICS, Integration, Subscription, field_permission
from .webhooks import handshake

logger = logging.getLogger("emulator")

VERSION = re.compile(r"^v\d+(\.\d+)?/")
SENDER_ACTIONS = ("mark_seen", "typing_on", "typing_off")
MAX_TEXT = 2000
CALLS_PER_HOUR = 20_000


class GraphError(Exception):
    """A refusal, answered as ``{"error": {...}}`` with an HTTP status."""

    def __init__(self, message: str, code: int, status: int = 400, subcode: int | None = None,
                 type: str = "OAuthException", integration: Integration | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.status, self.subcode, self.type = message, code, status, subcode, type
        #: the integration a refused call is counted for, when the call names one
        self.integration = integration

    def response(self) -> Response:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code,
                                 "fbtrace_id": "Aemulator"}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        answer = jsonify({"error": error})
        answer.status_code = self.status
        return answer


def graph_error(message: str, code: int, status: int = 400) -> Response:
    """A response shaped like a Graph API error."""
    return GraphError(message, code, status).response()


class Recorder:
    """Every accepted call, in order, for ``GET /_emulator/calls``."""

    def __init__(self, limit: int = 50_000) -> None:
        self.calls: list[dict[str, Any]] = []
        self.limit = limit
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, integration: str, method: str, path: str, body: Any) -> int:
        with self._lock:
            n = next(self._ids)
            if len(self.calls) < self.limit:
                self.calls.append({"n": n, "integration": integration, "method": method, "path": path, "body": body})
            return n


@dataclass
class Call:
    """One authorised call: who makes it, the path without its version, the parameters."""

    integration: Integration
    method: str
    path: str
    body: dict


Handler = Callable[[Call, list[str]], Any]
#: The permission a route needs: one, any of several (a tuple), or none.
Permission = str | tuple[str, ...] | None


def blueprint() -> Blueprint:
    bp = Blueprint("graph", __name__)
    bp.add_url_rule("/_emulator/calls", view_func=_calls, methods=["GET"])
    bp.add_url_rule("/<path:path>", view_func=_dispatch, methods=["GET", "POST", "DELETE"])
    return bp


def _calls() -> Response:
    return jsonify({"calls": current_app.extensions["emulator"].recorder.calls})


def _dispatch(path: str) -> Response:
    path = VERSION.sub("", path.strip("/"))
    found = _route(request.method, path)
    if found is None:
        return graph_error(f"Unsupported {request.method.lower()} request: {path}", 100)
    handler, permission, args = found
    emulator = current_app.extensions["emulator"]
    integration: Integration | None = None
    code = None
    try:
        body = _body()
        app_call = path == "app/subscriptions"
        integration = _app_caller() if app_call else _caller()
        _open_to(integration)
        if not app_call:
            _check(integration, permission)
        result = handler(Call(integration, request.method, path, body), args)
        status, response = 200, jsonify(result)
        if request.method != "GET":
            emulator.recorder.record(integration.name, request.method, path, body)
    except GraphError as refusal:
        status, response, code = refusal.status, refusal.response(), refusal.code
        integration = integration or refusal.integration
    if integration is not None:
        emulator.integrations.record_call(integration.id, request.method, path, status, code)
        _usage_headers(response, integration)
    return response


# authorisation ---------------------------------------------------------------------------------
def _token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip() or None
    return request.args.get("access_token") or None


def _caller() -> Integration:
    """The integration whose access token the call carries."""
    token = _token()
    if token is None:
        raise GraphError("An access token is required to request this resource.", 104, 400)
    integrations = current_app.extensions["emulator"].integrations
    integration = integrations.by_token(token)
    if integration is None:
        retired = integrations.by_retired_token(token)
        if retired is not None:
            raise GraphError("Invalid OAuth access token: it was reset in the Admin Panel; use the new one.", 190,
                             401, subcode=460, integration=retired)
        raise GraphError("Invalid OAuth access token.", 190, 401)
    return integration


def _app_caller() -> Integration:
    """The integration named by an app token ``APP_ID|APP_SECRET`` (``/app/subscriptions`` needs one)."""
    token = _token() or ""
    integration = current_app.extensions["emulator"].integrations.by_app_token(token) if "|" in token else None
    if integration is None:
        raise GraphError("Invalid OAuth access token: /app/subscriptions needs the app token APP_ID|APP_SECRET.",
                         190, 401)
    return integration


def _open_to(integration: Integration) -> None:
    """Refuse a disabled integration, and a caller outside its server IP allow list."""
    if not integration.enabled:
        raise GraphError("(#10) This integration is disabled: an admin can enable it in the Admin Panel "
                         "(Visibility).", 10, 403)
    if not integration.ip_allowed(request.remote_addr):
        raise GraphError(f"(#5) Unauthorized source IP address {request.remote_addr}: not in the integration's "
                         "server IP allow list.", 5, 403)


def _check(integration: Integration, permission: Permission) -> None:
    """The proof, then injected latency and errors (as a flaky network would), then the permission."""
    problem = integration.proof_error(request.args)
    if problem:
        raise GraphError(f"(#100) {problem}", 100)
    if integration.latency_ms:
        time.sleep(integration.latency_ms / 1000)
    if integration.error_rate and random.random() < integration.error_rate:
        raise GraphError("(#2) Service temporarily unavailable (injected fault)", 2, 503, type="GraphMethodException")
    needed = (permission,) if isinstance(permission, str) else permission or ()
    if needed and not any(integration.has(p) for p in needed):
        raise GraphError(f"(#200) Requires the {' or '.join(repr(p) for p in needed)} permission: an admin can "
                         "grant it in the Admin Panel (Permissions).", 200, 403)


def _usage_headers(response: Response, integration: Integration) -> None:
    share = min(100, current_app.extensions["emulator"].integrations.calls_in_last_hour(integration.id) * 100
                // CALLS_PER_HOUR)
    usage = {"call_count": share, "total_cputime": share // 2, "total_time": share // 2}
    response.headers["X-App-Usage"] = json.dumps(usage)
    response.headers["X-Business-Use-Case-Usage"] = json.dumps(
        {integration.page_id: [{"type": "messenger", **usage, "estimated_time_to_regain_access": 0}]})


def _body() -> dict:
    """The call's parameters: a JSON object, a form, or the query string, as Graph accepts them."""
    if request.method == "GET":
        return request.args.to_dict()
    if request.data and request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise GraphError("(#100) The request body must be a JSON object.", 100)
        return body
    form = request.form.to_dict() or {k: v for k, v in request.args.items()
                                      if k not in ("access_token", "appsecret_proof", "appsecret_time")}
    for key, value in form.items():
        if value[:1] in "[{":
            try:
                form[key] = json.loads(value)
            except ValueError:
                pass
    return form


# routing ---------------------------------------------------------------------------------------
def _route(method: str, path: str) -> tuple[Handler, Permission, list[str]] | None:
    for verb, pattern, handler, permission in ROUTES:
        found = pattern.fullmatch(path)
        if verb == method and found:
            return handler, permission, list(found.groups())
    return None


def _emulator():
    return current_app.extensions["emulator"]


def _need(value: Any, name: str) -> Any:
    if value in (None, "", [], {}):
        raise GraphError(f"(#100) The parameter {name} is required", 100)
    return value


# /me/messages ----------------------------------------------------------------------------------
def send(call: Call, _: list[str]) -> dict:
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
    if message is not None:
        _check_message(message)
    thread_id, answer = _thread_for(bot, recipient)
    community = _emulator().community
    if action == "mark_seen":
        community.mark_seen(thread_id)
        return {"recipient_id": answer["recipient_id"]}
    if action is not None:
        community.set_typing(thread_id, action == "typing_on")
        return {"recipient_id": answer["recipient_id"]}
    stored = community.add_message(thread_id, bot.page_id, message)
    _emulator().activity.bot_sent(bot, thread_id, stored["id"])
    _show(bot.name, answer["recipient_id"], message)
    return {**answer, "message_id": stored["id"]}


def _check_message(message: Any) -> None:
    if not isinstance(message, dict) or not (message.get("text") or message.get("attachment")):
        raise GraphError("(#100) message must have text or an attachment", 100)
    text = message.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        raise GraphError(f"(#100) message.text must be text of at most {MAX_TEXT} characters", 100)
    replies = message.get("quick_replies", [])
    if not isinstance(replies, list) or len(replies) > 13:
        raise GraphError("(#100) message.quick_replies must be a list of at most 13", 100)


def _thread_for(bot: Integration, recipient: dict) -> tuple[str, dict]:
    """The thread a send goes to, opening it when needed, and the answer's recipient fields."""
    community = _emulator().community
    if recipient.get("thread_key"):
        key = str(recipient["thread_key"])
        thread = community.thread(key)
        if thread is None or bot.page_id not in thread["participants"]:
            raise GraphError(f"(#100) No thread {key} that this integration takes part in", 100, subcode=2018001)
        return key, {"recipient_id": key}
    if recipient.get("id"):
        person = _person(str(recipient["id"]))
        thread, _ = community.direct_thread(person["id"], bot.page_id)
        return thread["id"], {"recipient_id": person["id"]}
    ids = recipient["ids"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise GraphError("(#100) recipient.ids must be a list of people's ids", 100)
    people = [_person(i)["id"] for i in ids]
    thread = community.open_thread([bot.page_id, *people])
    return thread["id"], {"recipient_id": thread["id"], "thread_key": thread["id"]}


def _person(person_id: str) -> dict:
    if not person_id.isdigit():
        raise GraphError(f"(#100) No matching user found for {person_id!r}", 100, subcode=2018001)
    person = _emulator().community.welcome(person_id)
    if not person.get("active"):
        raise GraphError("(#551) This person isn't available right now.", 551)
    return person


def _show(bot: str, to: str, message: dict) -> None:
    buttons = " ".join(f"[{q.get('title')}]" for q in message.get("quick_replies", []) if isinstance(q, dict))
    logger.info("[chat] %s -> %s: %s %s", bot, to, "(text)" if message.get("text") else "(attachment)", buttons)


# /me/messenger_profile, /me, /me/subscribed_apps ----------------------------------------------
PROFILE_FIELDS = ("get_started", "greeting", "persistent_menu", "ice_breakers", "whitelisted_domains")


def profile_set(call: Call, _: list[str]) -> dict:
    """Merge get_started, greeting, persistent_menu ... into the bot's Messenger profile."""
    unknown = sorted(set(call.body) - set(PROFILE_FIELDS))
    if unknown or not call.body:
        raise GraphError(f"(#100) messenger_profile takes {', '.join(PROFILE_FIELDS)}; got {unknown or 'nothing'}", 100)
    get_started = call.body.get("get_started")
    if get_started is not None and not (isinstance(get_started, dict) and get_started.get("payload")):
        raise GraphError("(#100) get_started must be {\"payload\": ...}", 100)
    profile = {**call.integration.profile, **call.body}
    _emulator().integrations.update(call.integration.id, profile=profile)
    return {"result": "success"}


def profile_get(call: Call, _: list[str]) -> dict:
    """The profile fields asked for (all by default)."""
    wanted = [f for f in call.body.get("fields", "").split(",") if f] or list(PROFILE_FIELDS)
    return {"data": [{k: v for k, v in call.integration.profile.items() if k in wanted}]}


def profile_delete(call: Call, _: list[str]) -> dict:
    """Remove the named profile fields."""
    fields = call.body.get("fields") or []
    fields = fields.split(",") if isinstance(fields, str) else fields
    profile = {k: v for k, v in call.integration.profile.items() if k not in fields}
    _emulator().integrations.update(call.integration.id, profile=profile)
    return {"result": "success"}


def subscribed_apps(call: Call, _: list[str]) -> dict:
    """The app subscribed to the bot's page, with its page fields."""
    page = _emulator().integrations.subscriptions(call.integration.id).get("page")
    return {"data": [{"id": call.integration.id, "name": call.integration.name,
                      "subscribed_fields": page.fields if page else []}]}


def subscribe_app(call: Call, _: list[str]) -> dict:
    """Subscribing the page to the app: always already done in the emulator."""
    return {"success": True}


# /app/subscriptions ----------------------------------------------------------------------------
def subscriptions_list(call: Call, _: list[str]) -> dict:
    """The integration's webhook subscriptions, as /app/subscriptions lists them."""
    found = _emulator().integrations.subscriptions(call.integration.id).values()
    return {"data": [{"object": s.topic, "callback_url": s.callback_url, "active": True,
                      "fields": [{"name": f, "version": "v18.0"} for f in s.fields]} for s in found]}


def subscribe(call: Call, _: list[str]) -> dict:
    """Subscribe a topic by API, after the same GET handshake the Admin Panel runs."""
    body = call.body
    topic = _need(body.get("object"), "object")
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
    url, token = _need(body.get("callback_url"), "callback_url"), _need(body.get("verify_token"), "verify_token")
    problem = handshake(url, token)
    if problem:
        raise GraphError(f"(#2200) Callback verification failed: {problem}", 2200)
    _emulator().integrations.subscribe(call.integration.id, Subscription(topic, url, token, fields))
    return {"success": True}


def unsubscribe(call: Call, _: list[str]) -> dict:
    """Remove one topic's subscription (``object``), or all of them."""
    _emulator().integrations.unsubscribe(call.integration.id, call.body.get("object") or None)
    return {"success": True}


# group content ---------------------------------------------------------------------------------
def comment(call: Call, args: list[str]) -> dict:
    """Comment under a post or comment as the bot; the group's other bots hear of it."""
    message = _need(call.body.get("message"), "message")
    if not isinstance(message, str) or len(message) > 8000:
        raise GraphError("(#100) message must be text of at most 8000 characters", 100)
    _object(args[0], "post or comment")
    posted = _emulator().activity.comment(args[0], call.integration.page_id, message)
    logger.info("[feed] %s commented on %s", call.integration.name, args[0])
    return {"id": posted["id"]}


def comments_list(call: Call, args: list[str]) -> dict:
    """The comments of a post."""
    item = _object(args[0], "post or comment")
    rows = [row for post in _emulator().community.feed(item["group_id"]) for row in post["comments"]
            if row["post_id"] == (item["post_id"] or item["id"])]
    return {"data": [_item_fields(row) for row in rows]}


def feed_post(call: Call, args: list[str]) -> dict:
    """Post in a group the bot is a member of."""
    group = _group(args[0])
    if call.integration.page_id not in _emulator().community.members(group["id"]):
        raise GraphError("(#200) The integration is not a member of this group: add it in the group first", 200, 403)
    message = _need(call.body.get("message"), "message")
    if not isinstance(message, str):
        raise GraphError("(#100) message must be text", 100)
    post = _emulator().activity.post(group["id"], call.integration.page_id, message)
    return {"id": post["id"]}


def feed_list(call: Call, args: list[str]) -> dict:
    """A group's newest posts."""
    return {"data": [_item_fields(post) for post in _emulator().community.feed(_group(args[0])["id"])]}


def like(call: Call, args: list[str]) -> dict:
    """Like a post or comment as the bot."""
    _object(args[0], "post or comment")
    _emulator().community.like(args[0], call.integration.page_id)
    return {"success": True}


def _object(item_id: str, kind: str) -> dict:
    item = _emulator().community.item(item_id)
    if item is None:
        raise GraphError(f"(#100) Unsupported request: no {kind} with ID '{item_id}'", 100, subcode=33)
    return item


def _group(group_id: str) -> dict:
    group = _emulator().community.group(group_id)
    if group is None:
        raise GraphError(f"(#100) Unsupported request: no group with ID '{group_id}'", 100, subcode=33)
    return group


def _item_fields(item: dict) -> dict:
    names = _emulator().community.names()
    return {"id": item["id"], "message": item["message"], "created_time": item["time"],
            "from": {"id": item["author_id"], "name": names.get(item["author_id"], item["author_id"])}}


# threads ---------------------------------------------------------------------------------------
def _own_thread(call: Call, key: str) -> dict:
    thread = _emulator().community.thread(key)
    if thread is None or call.integration.page_id not in thread["participants"]:
        raise GraphError(f"(#100) No thread {key} that this integration takes part in", 100, subcode=2018001)
    if not thread["is_group"]:
        raise GraphError("(#100) Only group chats have a name and participants to change", 100)
    return thread


def rename_thread(call: Call, args: list[str]) -> dict:
    """Name a group chat the bot takes part in."""
    _own_thread(call, args[0])
    name = _need(call.body.get("name"), "name")
    _emulator().community.rename(args[0], str(name)[:250])
    return {"success": True}


def participants(call: Call, args: list[str]) -> dict:
    """Add (POST) or remove (DELETE) people in a group chat the bot takes part in."""
    _own_thread(call, args[0])
    people = call.body.get("to")
    people = json.loads(people) if isinstance(people, str) and people.startswith("[") else people
    if not isinstance(people, list) or not people:
        raise GraphError("(#100) The parameter to is required: a list of people's ids", 100)
    ids = [_person(str(p))["id"] for p in people]
    community = _emulator().community
    (community.add_participants if call.method == "POST" else community.remove_participants)(args[0], ids)
    return {"success": True}


def participants_list(call: Call, args: list[str]) -> dict:
    """Who takes part in a group chat."""
    thread = _own_thread(call, args[0])
    names = _emulator().community.names()
    return {"data": [{"id": m, "name": names.get(m, m)} for m in thread["participants"]]}


# GET /{id}?fields= -----------------------------------------------------------------------------
def read(call: Call, args: list[str]) -> dict:
    """Any node: a person, the bot's page, a group, a post or comment, a thread."""
    node_id = args[0]
    community, bot = _emulator().community, call.integration
    fields = [f.strip() for f in call.body.get("fields", "").split(",") if f.strip()]
    if node_id == "me" or node_id == bot.page_id:
        return _pick("Page", {"id": bot.page_id, "name": bot.name, "about": bot.description}, fields)
    if person := community.person(node_id):
        if "email" in fields and not bot.has("Read user email"):
            raise GraphError("(#200) Reading email requires the 'Read user email' permission", 200, 403)
        first, _, last = person["name"].partition(" ")
        return _pick("User", {"id": person["id"], "name": person["name"], "first_name": first, "last_name": last,
                              "email": person["email"], "title": person["title"]}, fields)
    if (group := community.group(node_id)) or (item := community.item(node_id)):
        if not bot.has("Read group content"):
            raise GraphError("(#200) Reading group content requires the 'Read group content' permission", 200, 403)
        node = {**group, "privacy": "CLOSED"} if group else _item_fields(item)
        return _pick("Group" if group else "Post", node, fields)
    if (thread := community.thread(node_id)) and bot.page_id in thread["participants"]:
        return _pick("Thread", {"id": thread["id"], "name": thread["name"],
                                "participants": {"data": [{"id": p} for p in thread["participants"]]}}, fields)
    raise GraphError(f"(#100) Unsupported get request. Object with ID '{node_id}' does not exist", 100, subcode=33)


def _pick(kind: str, node: dict, fields: list[str]) -> dict:
    wanted = fields or ["id", "name"]
    unknown = [f for f in wanted if f not in node]
    if unknown:
        raise GraphError(f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type ({kind})", 100)
    return {f: node[f] for f in dict.fromkeys(["id", *wanted])}


ID = r"([\w.-]+)"
THREAD = r"(t_\d+)"
#: Every endpoint: method, path pattern (the groups are the handler's arguments), handler, permission.
ROUTES: list[tuple[str, re.Pattern, Handler, Permission]] = [
    (verb, re.compile(pattern), handler, permission) for verb, pattern, handler, permission in [
        ("POST", "me/messages", send, "Message any member"),
        ("POST", "me/messenger_profile", profile_set, "Message any member"),
        ("GET", "me/messenger_profile", profile_get, None),
        ("DELETE", "me/messenger_profile", profile_delete, "Message any member"),
        ("GET", "me/subscribed_apps", subscribed_apps, None),
        ("POST", "me/subscribed_apps", subscribe_app, None),
        ("GET", "app/subscriptions", subscriptions_list, None),
        ("POST", "app/subscriptions", subscribe, None),
        ("DELETE", "app/subscriptions", unsubscribe, None),
        ("POST", f"{THREAD}/threadname", rename_thread, "Message any member"),
        ("POST", f"{THREAD}/participants", participants, "Message any member"),
        ("DELETE", f"{THREAD}/participants", participants, "Message any member"),
        ("GET", f"{THREAD}/participants", participants_list, "Message any member"),
        ("POST", f"{ID}/comments", comment, ("Manage group content", "Mention bot")),
        ("GET", f"{ID}/comments", comments_list, "Read group content"),
        ("POST", f"{ID}/feed", feed_post, "Manage group content"),
        ("GET", f"{ID}/feed", feed_list, "Read group content"),
        ("POST", f"{ID}/likes", like, "Manage group content"),
        ("GET", ID, read, None),
    ]
]

"""The people's side: pick who you are, Work Chat (bot directory, 1:1 and group chats with bots)
and groups (posts, comments, @-mentions, link previews).

Pages are plain templates; ``static/app.js`` fetches the small JSON API below whenever the page's
event stream (live.py) says something changed, and renders messages, buttons, typing and seen
indicators, feeds and previews without a reload.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, send_from_directory, session, url_for
from werkzeug.wrappers import Response

from .calls import state
from .community import CONFIGURE_INTEGRATIONS, may, role_of
from .integrations import Integration
from .logos import loadable
from .previews import links_in

if TYPE_CHECKING:
    from .app import Emulator

MAX_TEXT = 2000
MAX_STATUS = 140
#: How a chat shows a member who is gone (the page of an integration that was deleted).
GONE = "Deleted integration"
CLOSED = "This integration was deleted: its chat is kept to read, but nobody answers here any more."


def blueprint() -> Blueprint:
    bp = Blueprint("people", __name__)
    bp.add_url_rule("/", view_func=home, methods=["GET"])
    bp.add_url_rule("/viewer", view_func=choose_viewer, methods=["POST"])
    bp.add_url_rule("/chat", view_func=chat, methods=["GET"], defaults={"thread_id": None})
    bp.add_url_rule("/chat/<thread_id>", view_func=chat, methods=["GET"])
    bp.add_url_rule("/chat", view_func=new_group_chat, methods=["POST"])
    bp.add_url_rule("/bots/<integration_id>", view_func=open_bot, methods=["GET"])
    bp.add_url_rule("/groups", view_func=groups, methods=["GET"], defaults={"group_id": None})
    bp.add_url_rule("/groups/<group_id>", view_func=groups, methods=["GET"])
    bp.add_url_rule("/api/chats", view_func=api_chats, methods=["GET"])
    bp.add_url_rule("/api/threads/<thread_id>", view_func=api_thread, methods=["GET"])
    bp.add_url_rule("/api/threads/<thread_id>/messages", view_func=api_say, methods=["POST"])
    bp.add_url_rule("/api/threads/<thread_id>/read", view_func=api_read, methods=["POST"])
    bp.add_url_rule("/api/groups/<group_id>/feed", view_func=api_feed, methods=["GET"])
    bp.add_url_rule("/api/groups/<group_id>/posts", view_func=api_post, methods=["POST"])
    bp.add_url_rule("/api/items/<item_id>/comments", view_func=api_comment, methods=["POST"])
    bp.add_url_rule("/api/status", view_func=api_status, methods=["POST"])
    bp.add_url_rule("/api/preview", view_func=api_preview, methods=["GET"])
    bp.add_url_rule("/api/collection", view_func=api_collection, methods=["GET"])
    bp.app_context_processor(_context)
    bp.add_app_template_global(loadable, "logo_loads")
    bp.record_once(lambda setup: setup.app.add_url_rule("/favicon.ico", "favicon", favicon))
    return bp


def favicon() -> Response:
    """The site icon where browsers look for it by default (pages also link it from static/)."""
    return send_from_directory(Path(__file__).parent / "static", "favicon.svg", mimetype="image/svg+xml",
                               max_age=86400)


def safe_next(target: str | None, default: str) -> str:
    """Where to go after signing in: a path on this site (never another site's URL), else ``default``."""
    target = target or ""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else default


def _emulator() -> Emulator:
    return state()


def viewer() -> dict[str, Any] | None:
    """The person the browser acts as (picked on the home page), or None."""
    person_id = session.get("viewer")
    return _emulator().community.person(person_id) if person_id else None


def _context() -> dict[str, Any]:
    """What every page shows in its header: who is signed in, their role, and everyone to switch to."""
    person = viewer()
    return {"viewer": person, "everyone": _emulator().community.people(),
            "role": role_of(person).title if person else None,
            "configures": may(person, CONFIGURE_INTEGRATIONS)}


def _need_viewer() -> dict[str, Any]:
    person = viewer()
    if person is None:
        abort(Response(_error("Pick who you are first (the home page)."), 401, mimetype="application/json"))
    return person


def _error(message: str) -> str:
    return jsonify({"error": {"message": message}}).get_data(as_text=True)


def _text(body: dict[str, Any], name: str = "text") -> str:
    text = body.get(name)
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        abort(Response(_error(f"{name} must be 1 to {MAX_TEXT} characters"), 400, mimetype="application/json"))
    return text.strip()


# pages -----------------------------------------------------------------------------------------
def home() -> str:
    """Pick who you are; ``next`` is where the pick leads (the page that asked for someone signed in)."""
    return render_template("home.html", next=safe_next(request.args.get("next"), url_for("people.chat")))


def choose_viewer() -> Response:
    person_id = request.form.get("person_id", "")
    if _emulator().community.person(person_id) is None:
        abort(400)
    session["viewer"] = person_id
    _emulator().activity.logged_in(person_id)
    return redirect(safe_next(request.form.get("next"), url_for("people.chat")))


def chat(thread_id: str | None) -> str | Response:
    person = viewer()
    if person is None:
        return redirect(url_for("people.home"))
    thread = None
    if thread_id:
        thread = _emulator().community.thread(thread_id)
        if thread is None or person["id"] not in thread["participants"]:
            return redirect(url_for("people.chat"))
    bots = [i for i in _emulator().integrations.all() if i.listed]
    return render_template("chat.html", thread=thread, bots=bots, closed=_closed(thread) if thread else None)


def open_bot(integration_id: str) -> Response:
    person = viewer()
    if person is None:
        return redirect(url_for("people.home"))
    bot = _emulator().integrations.get(integration_id)
    if bot is None or not bot.listed:
        abort(404)
    thread = _emulator().activity.open_bot(person["id"], bot)
    return redirect(url_for("people.chat", thread_id=thread["id"]))


def new_group_chat() -> Response:
    person = viewer()
    if person is None:
        return redirect(url_for("people.home"))
    members = [m for m in request.form.getlist("members") if _emulator().community.names().get(m)]
    name = request.form.get("name", "").strip()[:100] or "Group chat"
    thread = _emulator().community.open_thread([person["id"], *members], name=name)
    return redirect(url_for("people.chat", thread_id=thread["id"]))


def groups(group_id: str | None) -> str | Response:
    if viewer() is None:
        return redirect(url_for("people.home"))
    community = _emulator().community
    all_groups = community.groups()
    group = community.group(group_id) if group_id else (all_groups[0] if all_groups else None)
    if group_id and group is None:
        abort(404)
    bots = [i.name for i in _emulator().activity.bots_in(community.members(group["id"]))] if group else []
    return render_template("groups.html", group=group, groups=all_groups, bots=bots)


# JSON API for static/app.js -------------------------------------------------------------------
def api_chats() -> Response:
    person = _need_viewer()
    community = _emulator().community
    names = community.names()
    chats = []
    for thread in community.threads_of(person["id"]):
        others = [names.get(m, GONE) for m in thread["participants"] if m != person["id"]]
        last = community.messages(thread["id"], limit=1)
        chats.append({"id": thread["id"], "name": thread["name"] or ", ".join(others) or "Just you",
                      "last": (last[0]["body"].get("text") or "(attachment)") if last else ""})
    return jsonify({"chats": chats})


def _thread_for(thread_id: str, person: dict[str, Any]) -> dict[str, Any]:
    thread = _emulator().community.thread(thread_id)
    if thread is None or person["id"] not in thread["participants"]:
        abort(404)
    return thread


def _closed(thread: dict[str, Any]) -> str | None:
    """Why nobody can write in a 1:1 chat any more (its bot's integration was deleted), or None."""
    names = _emulator().community.names()
    if thread["is_group"] or all(member in names for member in thread["participants"]):
        return None
    return CLOSED


def api_thread(thread_id: str) -> Response:
    person = _need_viewer()
    thread = _thread_for(thread_id, person)
    emulator = _emulator()
    names = emulator.community.names()
    bots = emulator.activity.bots_in(thread["participants"])
    messages = emulator.community.messages(thread_id)
    return jsonify({
        "thread": {"id": thread["id"], "name": thread["name"], "is_group": bool(thread["is_group"]),
                   "participants": [{"id": m, "name": names.get(m, GONE)} for m in thread["participants"]],
                   "closed": _closed(thread),
                   "typing": _typing(thread, bots), "seen_until": thread["seen_until"],
                   "menu": _menu(bots)},
        "me": person["id"], "names": names,
        "messages": [{"id": m["id"], "sender": m["sender_id"], "name": names.get(m["sender_id"], GONE),
                      "body": m["body"], "time": m["time"]} for m in messages]})


def _typing(thread: dict[str, Any], bots: list[Integration]) -> str | None:
    """Who is shown typing (the thread's bots), or None."""
    if thread["typing_until"] <= time.time():
        return None
    return ", ".join(bot.name for bot in bots) or "Someone"


def _menu(bots: list[Integration]) -> list[dict[str, Any]]:
    """The persistent menu of the thread's bot (1:1 chats with one bot have one)."""
    if len(bots) != 1:
        return []
    for menu in bots[0].profile.get("persistent_menu") or []:
        return [item for item in menu.get("call_to_actions", []) if isinstance(item, dict)]
    return []


def api_say(thread_id: str) -> Response:
    """A person writes, taps a quick reply (``quick_reply``) or a button (``postback``)."""
    person = _need_viewer()
    if _closed(_thread_for(thread_id, person)):
        abort(Response(_error(CLOSED), 409, mimetype="application/json"))
    body = request.get_json(silent=True) or {}
    activity = _emulator().activity
    if isinstance(body.get("postback"), dict):
        tap = body["postback"]
        message = activity.tap(thread_id, person["id"], _text(tap, "title"), _text(tap, "payload"))
    elif isinstance(body.get("quick_reply"), dict):
        tap = body["quick_reply"]
        message = activity.say(thread_id, person["id"], _text(tap, "title"), quick_reply=_text(tap, "payload"))
    else:
        message = activity.say(thread_id, person["id"], _text(body))
    return jsonify({"id": message["id"]})


def api_status() -> Response:
    """The person sets their profile status text (``status``, at most MAX_STATUS characters)."""
    person = _need_viewer()
    body = request.get_json(silent=True) or {}
    text = body.get("status")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_STATUS:
        abort(Response(_error(f"status must be 1 to {MAX_STATUS} characters"), 400, mimetype="application/json"))
    return jsonify(_emulator().activity.status_set(person["id"], text.strip()))


def api_read(thread_id: str) -> Response:
    person = _need_viewer()
    _thread_for(thread_id, person)
    _emulator().activity.read(thread_id, person["id"])
    return jsonify({"ok": True})


def api_feed(group_id: str) -> Response:
    _need_viewer()
    community = _emulator().community
    if community.group(group_id) is None:
        abort(404)
    return jsonify({"names": community.names(), "posts": community.feed(group_id)})


def api_post(group_id: str) -> Response:
    person = _need_viewer()
    if _emulator().community.group(group_id) is None:
        abort(404)
    post = _emulator().activity.post(group_id, person["id"], _text(request.get_json(silent=True) or {}, "message"))
    return jsonify({"id": post["id"]})


def api_comment(item_id: str) -> Response:
    person = _need_viewer()
    comment = _emulator().activity.comment(item_id, person["id"],
                                           _text(request.get_json(silent=True) or {}, "message"))
    if comment is None:
        abort(404)
    return jsonify({"id": comment["id"]})


def api_preview() -> Response:
    """The preview the current viewer sees for ``link``: asked of the integration for this viewer."""
    person = _need_viewer()
    link = request.args.get("link", "")
    if not links_in(link) or len(link) > 2000:
        return jsonify({"preview": None})
    return jsonify({"preview": _without_a_dead_icon(_emulator().previews.for_viewer(link, person["id"]))})


def _without_a_dead_icon(preview: dict[str, Any] | None) -> dict[str, Any] | None:
    """The preview without its icon when the icon does not load, so the browser never asks for it in vain."""
    if preview and preview.get("icon") and not loadable(str(preview["icon"])):
        return {key: value for key, value in preview.items() if key != "icon"}
    return preview


def api_collection() -> Response:
    """Documents to share from the composer, as the integrations' ``collection`` answers list them."""
    return jsonify({"documents": _emulator().previews.collection(_need_viewer()["id"])})

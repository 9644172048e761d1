"""Group content and reads: ``/{id}/comments``, ``/{group}/feed``, ``/{id}/likes``, ``/{id}?fields=`` and
``/?ids=``."""

from __future__ import annotations

import logging
from typing import Any

from . import params
from .calls import Call, GraphError, find_group, find_item, item_fields, need, state
from .integrations import Integration

logger = logging.getLogger("emulator")


# group content ---------------------------------------------------------------------------------
def comment(call: Call, args: list[str]) -> dict[str, Any]:
    """Comment under a post or comment as the bot; the group's other bots hear of it."""
    message = need(call.body.get("message"), "message")
    if not isinstance(message, str) or len(message) > 8000:
        raise GraphError("(#100) message must be text of at most 8000 characters", 100)
    find_item(args[0], "post or comment")
    posted = state().activity.comment(args[0], call.integration.page_id, message)
    if posted is None:  # gone since find_item found it
        raise GraphError(f"(#100) Unsupported request: no post or comment with ID '{args[0]}'", 100, subcode=33)
    logger.info("[feed] %s commented on %s", call.integration.name, args[0])
    return {"id": posted["id"]}


def comments_list(call: Call, args: list[str]) -> dict[str, Any]:
    """The comments of a post."""
    item = find_item(args[0], "post or comment")
    rows = [row for post in state().community.feed(item["group_id"]) for row in post["comments"]
            if row["post_id"] == (item["post_id"] or item["id"])]
    return {"data": [item_fields(row) for row in rows]}


def feed_post(call: Call, args: list[str]) -> dict[str, Any]:
    """Post in a group the bot is a member of."""
    group = find_group(args[0])
    if call.integration.page_id not in state().community.members(group["id"]):
        raise GraphError("(#200) The integration is not a member of this group: add it in the group first", 200, 403)
    message = need(call.body.get("message"), "message")
    if not isinstance(message, str):
        raise GraphError("(#100) message must be text", 100)
    post = state().activity.post(group["id"], call.integration.page_id, message)
    return {"id": post["id"]}


def feed_list(call: Call, args: list[str]) -> dict[str, Any]:
    """A group's newest posts."""
    return {"data": [item_fields(post) for post in state().community.feed(find_group(args[0])["id"])]}


def like(call: Call, args: list[str]) -> dict[str, Any]:
    """Like a post or comment as the bot."""
    find_item(args[0], "post or comment")
    state().community.like(args[0], call.integration.page_id)
    return {"success": True}


# GET /{id}?fields= and GET /?ids= ------------------------------------------------------------
#: Graph's limit on the ids of one multi-id read.
MAX_IDS = 50
Selection = dict[str, dict[str, Any]]


def read(call: Call, args: list[str]) -> dict[str, Any]:
    """Any node: a person, the bot's page, a group, a post or comment, a thread."""
    return _node(call.integration, args[0], _selection(call.body))


def read_many(call: Call, _: list[str]) -> dict[str, Any]:
    """Graph's multi-id read (``GET /?ids=1,2&fields=managers``): each node with the same fields, keyed by
    the id as asked; one unknown id refuses the whole read (803), as Graph does."""
    ids = _ids(call.body.get("ids"))
    selection = _selection(call.body)
    answers: dict[str, Any] = {}
    missing = []
    for node_id in ids:
        try:
            answers[node_id] = _node(call.integration, node_id, selection)
        except GraphError as refusal:
            if refusal.subcode != 33:
                raise
            missing.append(node_id)
    if missing:
        raise GraphError(f"(#803) Some of the aliases you requested do not exist: {','.join(missing)}", 803)
    return answers


def _ids(given: Any) -> list[str]:
    """The ids of a multi-id read, comma-separated or a list, each once, in order."""
    ids = given.split(",") if isinstance(given, str) else given if isinstance(given, list) else []
    found = list(dict.fromkeys(str(i).strip() for i in ids if str(i).strip()))
    if not found:
        raise GraphError("(#100) The parameter ids is required", 100)
    if len(found) > MAX_IDS:
        raise GraphError(f"(#100) Too many IDs. Maximum: {MAX_IDS}", 100)
    return found


def _selection(body: dict[str, Any]) -> Selection:
    """The fields asked for (``name,managers{name}``, or a list), each with its own sub-selection."""
    given = body.get("fields", "")
    try:
        return params.fields_of(",".join(map(str, given)) if isinstance(given, list) else str(given))
    except params.ParamError as error:
        raise GraphError(f"(#100) {error}", 100) from error


def _node(bot: Integration, node_id: str, selection: Selection) -> dict[str, Any]:
    """The node ``node_id`` with the selected fields; refused (100, subcode 33) when there is none."""
    community = state().community
    if node_id == "me" or node_id == bot.page_id:
        return _pick("Page", {"id": bot.page_id, "name": bot.name, "about": bot.description}, selection)
    if person := community.person(node_id) or ("@" in node_id and community.person_by_email(node_id)):
        return _person(bot, person, selection)
    if group := community.group(node_id):
        _may_read_content(bot)
        return _pick("Group", {**group, "privacy": "CLOSED"}, selection)
    if item := community.item(node_id):
        _may_read_content(bot)
        return _pick("Post", item_fields(item), selection)
    if (thread := community.thread(node_id)) and bot.page_id in thread["participants"]:
        return _pick("Thread", {"id": thread["id"], "name": thread["name"],
                                "participants": {"data": [{"id": p} for p in thread["participants"]]}}, selection)
    raise GraphError(f"(#100) Unsupported get request. Object with ID '{node_id}' does not exist", 100, subcode=33)


def _person(bot: Integration, person: dict[str, Any], selection: Selection) -> dict[str, Any]:
    """A person as Workplace's Member node shows them; ``managers`` is an edge whose people take their own
    sub-selection (``managers{name,title}``)."""
    if "email" in selection and not bot.has("Read user email"):
        raise GraphError("(#200) Reading email requires the 'Read user email' permission", 200, 403)
    profile = state().community.profile(person["id"])
    first, _, last = person["name"].partition(" ")
    node = {"id": person["id"], "name": person["name"], "first_name": first, "last_name": last,
            "email": person["email"], "title": person["title"], "department": profile["department"],
            "locale": profile["locale"], "active": bool(person["active"])}
    if "managers" in selection:
        node["managers"] = {"data": _managers(bot, profile["manager_id"], selection["managers"])}
    return _pick("User", node, selection)


def _managers(bot: Integration, manager_id: str | None, selection: Selection) -> list[dict[str, Any]]:
    """The ``managers`` edge's people (none for someone without a manager), each with its own selection."""
    manager = state().community.person(manager_id) if manager_id else None
    return [_person(bot, manager, selection or {"name": {}})] if manager else []


def _may_read_content(bot: Integration) -> None:
    if not bot.has("Read group content"):
        raise GraphError("(#200) Reading group content requires the 'Read group content' permission", 200, 403)


def _pick(kind: str, node: dict[str, Any], selection: Selection) -> dict[str, Any]:
    wanted = list(selection) or ["id", "name"]
    unknown = [f for f in wanted if f not in node]
    if unknown:
        raise GraphError(f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type ({kind})", 100)
    return {f: node[f] for f in dict.fromkeys(["id", *wanted])}

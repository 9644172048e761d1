"""Group content and reads: ``/{id}/comments``, ``/{group}/feed``, ``/{id}/likes`` and ``/{id}?fields=``."""

from __future__ import annotations

import logging
from typing import Any

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


# GET /{id}?fields= -----------------------------------------------------------------------------
def read(call: Call, args: list[str]) -> dict[str, Any]:
    """Any node: a person, the bot's page, a group, a post or comment, a thread."""
    node_id = args[0]
    community, bot = state().community, call.integration
    fields = [f.strip() for f in call.body.get("fields", "").split(",") if f.strip()]
    if node_id == "me" or node_id == bot.page_id:
        return _pick("Page", {"id": bot.page_id, "name": bot.name, "about": bot.description}, fields)
    if person := community.person(node_id):
        if "email" in fields and not bot.has("Read user email"):
            raise GraphError("(#200) Reading email requires the 'Read user email' permission", 200, 403)
        first, _, last = person["name"].partition(" ")
        return _pick("User", {"id": person["id"], "name": person["name"], "first_name": first, "last_name": last,
                              "email": person["email"], "title": person["title"]}, fields)
    if group := community.group(node_id):
        _may_read_content(bot)
        return _pick("Group", {**group, "privacy": "CLOSED"}, fields)
    if item := community.item(node_id):
        _may_read_content(bot)
        return _pick("Post", item_fields(item), fields)
    if (thread := community.thread(node_id)) and bot.page_id in thread["participants"]:
        return _pick("Thread", {"id": thread["id"], "name": thread["name"],
                                "participants": {"data": [{"id": p} for p in thread["participants"]]}}, fields)
    raise GraphError(f"(#100) Unsupported get request. Object with ID '{node_id}' does not exist", 100, subcode=33)


def _may_read_content(bot: Integration) -> None:
    if not bot.has("Read group content"):
        raise GraphError("(#200) Reading group content requires the 'Read group content' permission", 200, 403)


def _pick(kind: str, node: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    wanted = fields or ["id", "name"]
    unknown = [f for f in wanted if f not in node]
    if unknown:
        raise GraphError(f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type ({kind})", 100)
    return {f: node[f] for f in dict.fromkeys(["id", *wanted])}

"""What people's and bots' actions set off: the webhook entries Workplace would deliver.

A person's chat message, quick-reply or button tap, a new post or comment, an @-mention of a
bot, a bot's message arriving or being read: each becomes an entry for the integrations that
take part and have subscribed to that topic and field.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import urlencode

from flask import has_request_context, request

from .community import Community, mention_tags
from .integrations import Integration, Integrations
from .webhooks import Courier

COMMUNITY_ID = "1394518670594144"
#: Where the local Workplace serves when no request says (``python -m emulator``'s default address).
DEFAULT_URL = "http://127.0.0.1:8001/"


def permalink(item: dict[str, Any]) -> str:
    """The address of a post or comment's page on the people's side, at the address this request came to
    (``/work/groups/<group>?post=<post>``, and ``&comment=<comment>`` for a comment)."""
    base = request.host_url if has_request_context() else DEFAULT_URL
    post_id = item.get("post_id") or item["id"]
    query = {"post": post_id, **({"comment": item["id"]} if item.get("post_id") else {})}
    return f"{base}work/groups/{item['group_id']}?{urlencode(query)}"


def millis() -> int:
    return int(time.time() * 1000)


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class Activity:
    """Turns actions in the community into stored content and webhook deliveries."""

    def __init__(self, community: Community, integrations: Integrations, courier: Courier) -> None:
        self.community = community
        self.integrations = integrations
        self.courier = courier

    # chat --------------------------------------------------------------------------------------
    def bots_in(self, member_ids: list[str]) -> list[Integration]:
        """The integrations among ``member_ids`` (bots take part through their page id)."""
        return [bot for member in member_ids if (bot := self.integrations.by_page(member))]

    def open_bot(self, person_id: str, bot: Integration) -> dict[str, Any]:
        """The person's 1:1 thread with ``bot``; a first visit sends the Get Started postback."""
        thread, _ = self.community.direct_thread(person_id, bot.page_id)
        if not self.community.messages(thread["id"], limit=1):
            payload = (bot.profile.get("get_started") or {}).get("payload")
            if payload:
                self.tap(thread["id"], person_id, "Get Started", payload)
        return thread

    def say(self, thread_id: str, person_id: str, text: str, quick_reply: str | None = None) -> dict[str, Any]:
        """A person's chat message (or quick-reply tap), stored and delivered to the thread's bots."""
        body: dict[str, Any] = {"text": text}
        if quick_reply is not None:
            body["quick_reply"] = {"payload": quick_reply}
        message = self.community.add_message(thread_id, person_id, body)
        self._to_bots(thread_id, person_id, "messages", {"message": {"mid": message["id"], **body}})
        return message

    def tap(self, thread_id: str, person_id: str, title: str, payload: str) -> dict[str, Any]:
        """A button, menu or Get Started tap: shown as the person's message, delivered as a postback."""
        message = self.community.add_message(thread_id, person_id, {"text": title, "postback": payload})
        self._to_bots(thread_id, person_id, "messaging_postbacks", {"postback": {"title": title, "payload": payload}})
        return message

    def read(self, thread_id: str, person_id: str) -> None:
        """The person looked at the thread: the bots subscribed to message_reads hear of it."""
        self._to_bots(thread_id, person_id, "message_reads", {"read": {"watermark": millis()}})

    def bot_sent(self, bot: Integration, thread_id: str, message_id: str) -> None:
        """A bot's message reached the people of a 1:1 thread: a delivery receipt for the bot."""
        thread = self.community.thread(thread_id) or {}
        if thread.get("is_group"):
            return
        for person in thread.get("participants", []):
            if person != bot.page_id:
                self.courier.send(bot, "page", "message_deliveries", self._messaging(
                    bot, person, None, {"delivery": {"mids": [message_id], "watermark": millis()}}))

    def _to_bots(self, thread_id: str, person_id: str, field_name: str, item: dict[str, Any]) -> None:
        thread = self.community.thread(thread_id) or {}
        group_thread = thread_id if thread.get("is_group") else None
        for bot in self.bots_in(thread.get("participants", [])):
            self.courier.send(bot, "page", field_name, self._messaging(bot, person_id, group_thread, item))

    @staticmethod
    def _messaging(bot: Integration, person_id: str, thread_id: str | None, item: dict[str, Any]) -> dict[str, Any]:
        stamp = millis()
        full = {"sender": {"id": person_id, "community": {"id": COMMUNITY_ID}}, "recipient": {"id": bot.page_id},
                "timestamp": stamp, **item}
        if thread_id:
            full["thread"] = {"id": thread_id}
        return {"id": bot.page_id, "time": stamp, "messaging": [full]}

    def logged_in(self, person_id: str) -> None:
        """A person started a session (picked who they are): ``workplace_security``/``sessions``
        subscribers hear of it."""
        self._security("sessions", {"event": "LOG_IN", "target_id": person_id, "actor_id": person_id})

    def admin_acted(self, event: str, actor_id: str | None, target_id: str) -> None:
        """An admin did something in the Admin Panel: ``workplace_security``/``admin_activity``
        subscribers hear of it.

        The event names (``ADMIN_RESET_ACCESS_TOKEN``, ``ADMIN_RESET_APP_SECRET``,
        ``ADMIN_DELETE_INTEGRATION``) are ours: PROTOCOL.md names only account events. The actor is
        the person the admin's browser picked, if any; the target is the integration's id.
        """
        self._security("admin_activity", {"event": event, "actor_id": actor_id, "target_id": target_id,
                                          "target_type": "INTEGRATION"})

    def _security(self, field_name: str, value: dict[str, Any]) -> None:
        stamp = int(time.time())
        full = {**value, "ip": "127.0.0.1", "timestamp": stamp}
        entry = {"id": COMMUNITY_ID, "time": stamp, "changes": [{"field": field_name, "value": full}]}
        for bot in self.integrations.all():
            self.courier.send(bot, "workplace_security", field_name, entry)

    def status_set(self, person_id: str, text: str) -> dict[str, Any]:
        """A person set their profile status: ``user``/``status`` subscribers hear of it.

        PROTOCOL.md gives no value shape for this field, so ``{id, status: {text}, updated_time}``
        is our choice; bots/schemas.py accepts any value for it. The entry id is the person's id.
        """
        stamp = int(time.time())
        value = {"id": person_id, "status": {"text": text}, "updated_time": iso(stamp)}
        entry = {"id": person_id, "time": stamp, "changes": [{"field": "status", "value": value}]}
        for bot in self.integrations.all():
            self.courier.send(bot, "user", "status", entry)
        return value

    # groups ------------------------------------------------------------------------------------
    def post(self, group_id: str, author_id: str, text: str) -> dict[str, Any]:
        """A post in a group: ``@name`` mentions of the group's bots are tagged; the group's bots hear of it."""
        text, shown, tags = self._mentions(group_id, text)
        post = self.community.add_post(group_id, author_id, text)
        value = {"verb": "add", "post_id": post["id"], "message": shown, "from": self._from(author_id),
                 "type": "status", "target_type": "group", "created_time": iso(post["time"]),
                 "permalink_url": permalink(post),
                 "community": {"id": COMMUNITY_ID}}
        self._to_group(group_id, author_id, "posts", value)
        self._mentioned(tags, author_id, {"item": "post", "post_id": post["id"], "message": shown}, post)
        return post

    def comment(self, target_id: str, author_id: str, text: str) -> dict[str, Any] | None:
        """A comment under a post or comment; None when there is no such target."""
        target = self.community.item(target_id)
        if target is None:
            return None
        text, shown, tags = self._mentions(target["group_id"], text)
        comment = self.community.add_comment(target_id, author_id, text) or {}
        value = {"verb": "add", "comment_id": comment["id"], "post_id": comment["post_id"], "message": shown,
                 "from": self._from(author_id), "created_time": iso(comment["time"]),
                 "permalink_url": permalink(comment)}
        if target_id != comment["post_id"]:
            value["parent_id"] = target_id
        self._to_group(comment["group_id"], author_id, "comments", value)
        self._mentioned(tags, author_id, {"item": "comment", "post_id": comment["post_id"],
                                          "comment_id": comment["id"], "message": shown}, comment)
        return comment

    def membership(self, group_id: str, member_id: str, joined: bool) -> None:
        """Someone (a person or a bot) joined or left a group; changes nothing when they already had."""
        members = self.community.members(group_id)
        if (member_id in members) == joined:
            return
        if joined:
            self.community.add_member(group_id, member_id)
        else:
            self.community.remove_member(group_id, member_id)
        value = {"verb": "add" if joined else "remove", "member": {"id": member_id}, "actor": {"id": member_id},
                 "update_time": iso(time.time())}
        self._to_group(group_id, member_id, "membership", value)

    def _mentions(self, group_id: str, text: str) -> tuple[str, str, list[dict[str, Any]]]:
        """Tag ``@Full Name`` of anyone in the company and ``@name`` of the group's bots, as the composer does."""
        people = {person["id"]: person["name"] for person in self.community.people()}
        bots = {bot.page_id: bot.name for bot in self.bots_in(self.community.members(group_id))}
        return mention_tags(text, self.community.taggable(), {**people, **bots})

    def _mentioned(self, tags: list[dict[str, Any]], author_id: str, value: dict[str, Any],
                   item: dict[str, Any]) -> None:
        for tag in tags:
            bot = self.integrations.by_page(tag["id"])
            if bot is None or bot.page_id == author_id:
                continue
            full = {**value, "verb": "add", "from": self._from(author_id), "message_tags": tags,
                    "created_time": iso(item["time"]),
                    "permalink_url": permalink(item)}
            self.courier.send(bot, "page", "mention", {"id": bot.page_id, "time": int(item["time"]),
                                                       "changes": [{"field": "mention", "value": full}]})

    def _to_group(self, group_id: str, author_id: str, field_name: str, value: dict[str, Any]) -> None:
        for bot in self.bots_in(self.community.members(group_id)):
            if bot.page_id != author_id:
                self.courier.send(bot, "group", field_name, {"id": group_id, "time": int(time.time()),
                                                             "changes": [{"field": field_name, "value": value}]})

    def _from(self, member_id: str) -> dict[str, Any]:
        return {"id": member_id, "name": self.community.names().get(member_id, member_id)}

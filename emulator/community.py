"""The community's content: people, groups and their members, posts and comments, chat threads
and their messages. Bots take part as members through their integration's page id.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .live import Hub
from .store import Store, dumps, now

MENTION = re.compile(r"@\[(\d+)\]")
TYPING_SECONDS = 20


class Taggable(NamedTuple):
    """What a mention tags: its name and its Graph type (``user``, ``page`` for a bot, ``group``)."""

    name: str
    type: str


@dataclass(frozen=True)
class Role:
    """What a person may do in the company: a title to show and the permissions it grants."""

    title: str
    permissions: frozenset[str] = frozenset()


CONFIGURE_INTEGRATIONS = "configure integrations"
ADMIN, EMPLOYEE = "admin", "employee"
#: The roles a person can have, by the key stored with them.
ROLES = {ADMIN: Role("Administrator", frozenset({"change company settings", CONFIGURE_INTEGRATIONS})),
         EMPLOYEE: Role("Employee")}


def role_of(person: dict[str, Any]) -> Role:
    """The role of a person row (an unknown key counts as an employee's, so nothing is granted by mistake)."""
    return ROLES.get(person.get("role", EMPLOYEE), ROLES[EMPLOYEE])


def may(person: dict[str, Any] | None, permission: str) -> bool:
    """Whether the person (None: nobody signed in) has ``permission`` through their role."""
    return person is not None and permission in role_of(person).permissions


def new_id(digits: int = 15) -> str:
    return str(secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1))


class Community:
    """People, groups, posts and chats, stored in the emulator's database."""

    def __init__(self, store: Store, live: Hub | None = None) -> None:
        self.store = store
        self.live = live or Hub()

    # people ------------------------------------------------------------------------------------
    def people(self) -> list[dict[str, Any]]:
        return self.store.all("SELECT * FROM people WHERE active = 1 ORDER BY name")

    def person(self, person_id: str) -> dict[str, Any] | None:
        return self.store.one("SELECT * FROM people WHERE id = ?", (person_id,))

    def person_by_email(self, email: str) -> dict[str, Any] | None:
        """The person who signs in with ``email`` (compared without case, as addresses are)."""
        return self.store.one("SELECT * FROM people WHERE lower(email) = lower(?)", (email,))

    def add_person(self, person_id: str, name: str, email: str, title: str = "", active: bool = True,
                   role: str = EMPLOYEE) -> None:
        self.store.execute("INSERT OR REPLACE INTO people (id, name, email, title, active, role) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (person_id, name, email, title, int(active), role))

    def set_role(self, person_id: str, role: str) -> None:
        """Give the person one of ROLES (by its key)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        self.store.execute("UPDATE people SET role = ? WHERE id = ?", (role, person_id))

    def with_role(self, role: str) -> list[dict[str, Any]]:
        """The active people who have ``role``, by name."""
        return self.store.all("SELECT * FROM people WHERE active = 1 AND role = ? ORDER BY name", (role,))

    def welcome(self, person_id: str) -> dict[str, Any]:
        """The person with this id, added as a guest when the community does not know them yet, so
        ``flask bots simulate`` and tests may write as anyone."""
        found = self.person(person_id)
        if found is None:
            self.add_person(person_id, f"Guest {person_id[-4:]}", f"guest{person_id}@example.com", "Guest")
            found = self.person(person_id)
        return found or {}

    def set_profile(self, person_id: str, department: str = "", manager_id: str | None = None,
                    locale: str = "en_US") -> None:
        """What Graph reads of a person besides their row: department, manager (a person's id), locale."""
        self.store.execute("INSERT OR REPLACE INTO profiles VALUES (?, ?, ?, ?)",
                           (person_id, department, manager_id, locale))

    def profile(self, person_id: str) -> dict[str, Any]:
        """The person's department, manager_id and locale (empty, none and en_US when never set)."""
        found = self.store.one("SELECT department, manager_id, locale FROM profiles WHERE person_id = ?",
                               (person_id,))
        return found or {"department": "", "manager_id": None, "locale": "en_US"}

    def taggable(self) -> dict[str, Taggable]:
        """Whatever an @-mention can tag, by id: people (user), bots (page) and groups (group)."""
        rows = self.store.all("SELECT id, name, 'user' AS type FROM people "
                              "UNION ALL SELECT page_id AS id, name, 'page' AS type FROM integrations "
                              "UNION ALL SELECT id, name, 'group' AS type FROM groups")
        return {row["id"]: Taggable(row["name"], row["type"]) for row in rows}

    def names(self) -> dict[str, str]:
        """Display names of everyone who can write: people and bots, by id."""
        rows = self.store.all("SELECT id, name FROM people UNION ALL SELECT page_id AS id, name FROM integrations")
        return {row["id"]: row["name"] for row in rows}

    # groups ------------------------------------------------------------------------------------
    def groups(self) -> list[dict[str, Any]]:
        return self.store.all("SELECT * FROM groups ORDER BY name")

    def group(self, group_id: str) -> dict[str, Any] | None:
        return self.store.one("SELECT * FROM groups WHERE id = ?", (group_id,))

    def add_group(self, group_id: str, name: str, description: str, members: list[str]) -> None:
        self.store.execute("INSERT OR REPLACE INTO groups VALUES (?, ?, ?)", (group_id, name, description))
        for member in members:
            self.add_member(group_id, member)

    def add_member(self, group_id: str, member_id: str) -> None:
        self.store.execute("INSERT OR IGNORE INTO members VALUES (?, ?)", (group_id, member_id))

    def remove_member(self, group_id: str, member_id: str) -> None:
        self.store.execute("DELETE FROM members WHERE group_id = ? AND member_id = ?", (group_id, member_id))

    def members(self, group_id: str) -> list[str]:
        return [row["member_id"] for row in self.store.all("SELECT member_id FROM members WHERE group_id = ?",
                                                           (group_id,))]

    # posts and comments ------------------------------------------------------------------------
    def add_post(self, group_id: str, author_id: str, message: str) -> dict[str, Any]:
        post_id = f"{group_id}_{new_id()}"
        self.store.execute("INSERT INTO posts (id, group_id, author_id, message, time) VALUES (?, ?, ?, ?, ?)",
                           (post_id, group_id, author_id, message, now()))
        self.live.group(group_id)
        return self.item(post_id) or {}

    def add_comment(self, target_id: str, author_id: str, message: str) -> dict[str, Any] | None:
        """A comment under a post, or a reply under a comment (kept on the same post); None if no target."""
        target = self.item(target_id)
        if target is None:
            return None
        post_id = target["post_id"] or target["id"]
        comment_id = f"{post_id.split('_')[-1]}_{new_id()}"
        self.store.execute("INSERT INTO posts (id, group_id, post_id, parent_id, author_id, message, time) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (comment_id, target["group_id"], post_id, target_id, author_id, message, now()))
        self.live.group(target["group_id"])
        return self.item(comment_id)

    def item(self, item_id: str) -> dict[str, Any] | None:
        """A post or a comment (a comment has ``post_id`` set)."""
        return self.store.one("SELECT * FROM posts WHERE id = ?", (item_id,))

    def feed(self, group_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The group's newest posts, each with its comments in order."""
        posts = self.store.all("SELECT * FROM posts WHERE group_id = ? AND post_id IS NULL ORDER BY seq DESC LIMIT ?",
                               (group_id, limit))
        for post in posts:
            post["comments"] = self.store.all("SELECT * FROM posts WHERE post_id = ? ORDER BY seq", (post["id"],))
            post["likes"] = self.likes(post["id"])
        return posts

    def like(self, object_id: str, actor_id: str) -> None:
        self.store.execute("INSERT OR IGNORE INTO likes VALUES (?, ?)", (object_id, actor_id))
        self.live.group((self.item(object_id) or {}).get("group_id", ""))

    def likes(self, object_id: str) -> list[str]:
        return [row["actor_id"] for row in self.store.all("SELECT actor_id FROM likes WHERE object_id = ?",
                                                          (object_id,))]

    # chat threads ------------------------------------------------------------------------------
    def thread(self, thread_id: str) -> dict[str, Any] | None:
        found = self.store.one("SELECT * FROM threads WHERE id = ?", (thread_id,))
        if found:
            found["participants"] = self.participants(thread_id)
        return found

    def direct_thread(self, person_id: str, other_id: str) -> tuple[dict[str, Any], bool]:
        """The 1:1 thread of two members, and whether it was just opened."""
        row = self.store.one(
            "SELECT t.id FROM threads t JOIN participants a ON a.thread_id = t.id AND a.member_id = ? "
            "JOIN participants b ON b.thread_id = t.id AND b.member_id = ? WHERE t.is_group = 0", (person_id, other_id))
        if row:
            return self.thread(row["id"]) or {}, False
        return self.open_thread([person_id, other_id], is_group=False), True

    def open_thread(self, member_ids: list[str], name: str = "", is_group: bool = True) -> dict[str, Any]:
        thread_id = f"t_{new_id()}"
        with self.store.transaction() as db:
            db.execute("INSERT INTO threads (id, name, is_group) VALUES (?, ?, ?)", (thread_id, name, int(is_group)))
            for member in dict.fromkeys(member_ids):
                db.execute("INSERT OR IGNORE INTO participants VALUES (?, ?)", (thread_id, member))
        self.live.chats(member_ids)
        return self.thread(thread_id) or {}

    def threads_of(self, member_id: str) -> list[dict[str, Any]]:
        """The member's threads, the most recently active first."""
        rows = self.store.all(
            "SELECT t.id, coalesce(max(m.seq), 0) AS last FROM threads t JOIN participants p ON p.thread_id = t.id "
            "LEFT JOIN messages m ON m.thread_id = t.id WHERE p.member_id = ? GROUP BY t.id "
            "ORDER BY last DESC, t.seq DESC", (member_id,))
        return [thread for row in rows if (thread := self.thread(row["id"]))]

    def participants(self, thread_id: str) -> list[str]:
        return [row["member_id"] for row in self.store.all("SELECT member_id FROM participants WHERE thread_id = ?",
                                                           (thread_id,))]

    def add_participants(self, thread_id: str, member_ids: list[str]) -> None:
        for member in member_ids:
            self.store.execute("INSERT OR IGNORE INTO participants VALUES (?, ?)", (thread_id, member))
        self.live.thread(thread_id, "thread", self.participants(thread_id))

    def remove_participants(self, thread_id: str, member_ids: list[str]) -> None:
        for member in member_ids:
            self.store.execute("DELETE FROM participants WHERE thread_id = ? AND member_id = ?", (thread_id, member))
        self.live.thread(thread_id, "thread", [*self.participants(thread_id), *member_ids])

    def rename(self, thread_id: str, name: str) -> None:
        self.store.execute("UPDATE threads SET name = ? WHERE id = ?", (name, thread_id))
        self.live.thread(thread_id, "thread", self.participants(thread_id))

    def add_message(self, thread_id: str, sender_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store a message (``text``, ``quick_replies``, ``attachment`` ... as sent) and stop the typing dots."""
        message_id = f"m_emu_{secrets.token_hex(8)}"
        self.store.execute("INSERT INTO messages (id, thread_id, sender_id, body, time) VALUES (?, ?, ?, ?, ?)",
                           (message_id, thread_id, sender_id, dumps(body), now()))
        self.store.execute("UPDATE threads SET typing_until = 0 WHERE id = ?", (thread_id,))
        self.live.thread(thread_id, "message", self.participants(thread_id))
        return {"id": message_id, "thread_id": thread_id, "sender_id": sender_id, "body": body}

    def messages(self, thread_id: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.store.all("SELECT * FROM (SELECT * FROM messages WHERE thread_id = ? ORDER BY seq DESC LIMIT ?) "
                              "ORDER BY seq", (thread_id, limit))
        for row in rows:
            row["body"] = json.loads(row["body"])
        return rows

    def set_typing(self, thread_id: str, on: bool) -> None:
        self.store.execute("UPDATE threads SET typing_until = ? WHERE id = ?",
                           (now() + TYPING_SECONDS if on else 0, thread_id))

    def mark_seen(self, thread_id: str) -> None:
        self.store.execute("UPDATE threads SET seen_until = ? WHERE id = ?", (now(), thread_id))
        self.live.thread(thread_id, "seen")


def mention_tags(text: str, known: Mapping[str, Taggable],
                 nameable: Mapping[str, str]) -> tuple[str, str, list[dict[str, Any]]]:
    """Turn ``@Full Name`` (a ``nameable`` id's name, case-insensitive, the longest first) into Graph's ``@[id]``
    form; returns that text, the text as rendered (each mention shown as the name) and the tags in it, each
    with the type of what it tags (``known``: user, page or group; an unknown id counts as a user)."""
    text = _by_name(text, nameable)
    tags, rendered, last = [], [], 0
    for found in MENTION.finditer(text):
        rendered.append(text[last:found.start()])
        name, kind = known.get(found.group(1), Taggable(found.group(1), "user"))
        offset = sum(len(part) for part in rendered)
        tags.append({"id": found.group(1), "name": name, "type": kind, "offset": offset, "length": len(name)})
        rendered.append(name)
        last = found.end()
    rendered.append(text[last:])
    return text, "".join(rendered), tags


def _by_name(text: str, nameable: Mapping[str, str]) -> str:
    """``text`` with each ``@name`` of ``nameable`` written ``@[id]``."""
    by_name = {name.lower(): member for member, name in nameable.items() if name}
    if not by_name:
        return text
    names = "|".join(re.escape(name) for name in sorted(by_name, key=len, reverse=True))
    pattern = re.compile(rf"@({names})(?!\w)", re.IGNORECASE)
    return pattern.sub(lambda m: f"@[{by_name[m.group(1).lower()]}]", text)

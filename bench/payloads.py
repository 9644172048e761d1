"""Signed deliveries shared by the benchmarks: the same bytes go to the floor and to the real app.

Bodies come from :class:`bots.deliveries.Deliveries`, so they are shaped like Workplace's, and are
signed with the bench credentials the real app is configured with. Every builder here makes fresh
message ids (one :class:`Deliveries` per process, so no two deliveries of a run share one): a
repeated body only measures the redelivery check.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass

from bots.deliveries import COMMUNITY_ID, USER_ID, Deliveries, envelope
from bots.signature import SHA256_HEADER, sign

SECRET = "bench-secret-0123456789"
#: The counting bench bot (``bench/counting_bot.py``): what the whole-path benchmarks serve.
COUNTER_BOT = "counter"
COUNTER_PATH = f"/webhooks/{COUNTER_BOT}"
COUNTER_CREDENTIALS = {"COUNTER_APP_SECRET": SECRET, "COUNTER_ACCESS_TOKEN": "bench-counter-token",
                       "COUNTER_VERIFY_TOKEN": "bench-counter-verify", "COUNTER_APP_ID": "1234567892"}
#: The helpdesk example bot, which ``bench/latency.py`` serves (its replies are what it times).
BOT = "helpdesk"
PATH = f"/webhooks/{BOT}"
CREDENTIALS = {"HELPDESK_APP_SECRET": SECRET, "HELPDESK_ACCESS_TOKEN": "bench-token-abcdefgh",
               "HELPDESK_VERIFY_TOKEN": "bench-verify-token", "HELPDESK_APP_ID": "1234567890"}
#: The documents bot answers link previews; same secret, so the HMAC peer accepts its deliveries too.
PREVIEW_BOT = "docs"
PREVIEW_PATH = f"/webhooks/{PREVIEW_BOT}"
PREVIEW_CREDENTIALS = {"DOCS_APP_SECRET": SECRET, "DOCS_ACCESS_TOKEN": "bench-docs-token-abcd",
                       "DOCS_VERIFY_TOKEN": "bench-docs-verify", "DOCS_APP_ID": "1234567891"}
#: A document its viewer may read: an ``accessible`` preview, cached for that viewer.
PREVIEW_LINK = "https://docs.example.com/d/q3-plan"
#: Where the real app's Graph calls go: a loopback port nobody listens on, so replies fail fast.
DEAD_GRAPH_URL = "http://127.0.0.1:9"
#: Senders the distinct deliveries come from in turn, so handler threads and lanes share the work.
PEOPLE = 1000

_BUILD = Deliveries()
_TURN = itertools.count()


@dataclass(frozen=True, slots=True)
class Signed:
    """One delivery as it travels: raw body, its signature header value, how many events it holds and
    the message ids among them (what the counting bot records)."""

    body: bytes
    signature: str
    events: int
    path: str = PATH
    mids: tuple[str, ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", SHA256_HEADER: self.signature}


def signed(delivery: dict, secret: str = SECRET, path: str = PATH) -> Signed:
    """Serialise and sign ``delivery`` the way Workplace does (sha256 over the raw bytes), for ``path``."""
    body = json.dumps(delivery).encode()
    entries = delivery["entry"]
    events = sum(len(entry.get("messaging") or ()) + len(entry.get("changes") or ()) for entry in entries)
    mids = tuple(item["message"]["mid"] for entry in entries for item in entry.get("messaging") or ()
                 if "mid" in (item.get("message") or {}))
    return Signed(body, sign(body, secret), events, path, mids)


def sender_id(n: int) -> str:
    """A person's id, distinct for each ``n``."""
    return f"1000{n:011d}"


def message(deliveries: Deliveries | None = None, text: str = "help", *, sender: str | None = None,
            path: str = PATH) -> Signed:
    """A 1:1 chat message to the bot (``page``/``messages``) with a fresh message id."""
    return signed((deliveries or _BUILD).message(text, sender=sender), path=path)


def distinct(count: int, *, people: int = PEOPLE, path: str = COUNTER_PATH) -> list[Signed]:
    """``count`` 1:1 messages, each with a message id no other delivery of this process has, from
    ``people`` senders in turn, signed for ``path`` (the counting bot's by default)."""
    return [message(text="help", sender=sender_id(next(_TURN) % people), path=path) for _ in range(count)]


def stream(*, people: int = PEOPLE, path: str = COUNTER_PATH) -> Iterator[Signed]:
    """Endless distinct messages, as :func:`distinct` makes them."""
    while True:
        yield from distinct(1000, people=people, path=path)


def preview(link: str = PREVIEW_LINK, viewer: str = USER_ID) -> Signed:
    """A ``link``/``preview`` request for ``viewer``, shaped as PROTOCOL.md section 7 shows it."""
    value = {"community": {"id": COMMUNITY_ID}, "user": {"id": viewer}, "link": link}
    body = envelope("link", [{"time": 1_700_000_007, "changes": [{"field": "preview", "value": value}]}])
    return signed(body, path=PREVIEW_PATH)

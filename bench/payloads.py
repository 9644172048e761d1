"""Signed deliveries shared by the benchmarks: the same bytes go to the floor and to the real app.

Bodies come from :class:`bots.deliveries.Deliveries`, so they are shaped like Workplace's, and are
signed with the bench credentials the real app is configured with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from bots.deliveries import COMMUNITY_ID, USER_ID, Deliveries, batch, envelope
from bots.signature import SHA256_HEADER, sign

BOT = "helpdesk"
PATH = f"/webhooks/{BOT}"
SECRET = "bench-secret-0123456789"
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


@dataclass(frozen=True, slots=True)
class Signed:
    """One delivery as it travels: raw body, its signature header value, and how many events it holds."""

    body: bytes
    signature: str
    events: int
    path: str = PATH

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", SHA256_HEADER: self.signature}


def signed(delivery: dict, secret: str = SECRET, path: str = PATH) -> Signed:
    """Serialise and sign ``delivery`` the way Workplace does (sha256 over the raw bytes), for ``path``."""
    body = json.dumps(delivery).encode()
    events = sum(len(entry.get("messaging") or ()) + len(entry.get("changes") or ()) for entry in delivery["entry"])
    return Signed(body, sign(body, secret), events, path)


def sender_id(n: int) -> str:
    """A person's id, distinct for each ``n``."""
    return f"1000{n:011d}"


def message(deliveries: Deliveries | None = None, text: str = "help") -> Signed:
    """A 1:1 chat message to the bot (``page``/``messages``)."""
    return signed((deliveries or Deliveries()).message(text))


def preview(link: str = PREVIEW_LINK, viewer: str = USER_ID) -> Signed:
    """A ``link``/``preview`` request for ``viewer``, shaped as PROTOCOL.md section 7 shows it."""
    value = {"community": {"id": COMMUNITY_ID}, "user": {"id": viewer}, "link": link}
    body = envelope("link", [{"time": 1_700_000_007, "changes": [{"field": "preview", "value": value}]}])
    return signed(body, path=PREVIEW_PATH)


def batched(entries: int = 10, deliveries: Deliveries | None = None) -> Signed:
    """One POST carrying ``entries`` entries of one message each, from different people."""
    build = deliveries or Deliveries()
    return signed(batch(*(build.message("help", sender=sender_id(n)) for n in range(entries))))


def message_stream(people: int = 1000) -> Iterator[Signed]:
    """Endless distinct messages (fresh message ids, so none is a redelivery), from ``people`` senders
    in turn so the handler threads share the work as they would in a real community."""
    build = Deliveries()
    n = 0
    while True:
        yield signed(build.message("help", sender=sender_id(n % people)))
        n += 1

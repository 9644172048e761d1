"""The documents bot: previews links to docs.example.com/d/<id> for each viewer, offers recent
documents in the composer, and finds documents in chat.

Its library is a small bundled data set (``handlers/data/docs.json``) with per-document readers:
one viewer sees a preview, another gets ``inaccessible``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bots import Bot, Context, Message, Preview, PreviewRequest

bot = Bot("docs", description="Company documents: previews and search", discoverable=True)

BASE = "https://docs.example.com"
ICON = f"{BASE}/static/icon.png"


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    summary: str
    owner: str
    status: str
    edited: str
    readers: tuple[str, ...] | None  # None: everyone in the company

    @property
    def url(self) -> str:
        return f"{BASE}/d/{self.id}"

    def readable_by(self, viewer: str | None) -> bool:
        return self.readers is None or viewer in self.readers


def load(path: Path = Path(__file__).with_name("data") / "docs.json") -> dict[str, Document]:
    """The bundled library, by document id."""
    raw = json.loads(path.read_text())["documents"]
    return {d["id"]: Document(d["id"], d["title"], d["summary"], d["owner"], d["status"], d["edited"],
                              None if d["readers"] == "everyone" else tuple(d["readers"])) for d in raw}


LIBRARY = load()


def preview_of(document: Document) -> Preview:
    return Preview(title=document.title, description=document.summary, link=document.url,
                   privacy="organization" if document.readers is None else "accessible", type="doc", icon=ICON,
                   canonical_link=document.url,
                   additional_data=[("Owner", document.owner), ("Status", document.status),
                                    {"title": "Edited", "value": document.edited, "format": "date"}])


@bot.link_preview("docs.example.com", path=r"^/d/(?P<doc_id>[\w-]+)/?$")
def doc(request: PreviewRequest) -> Preview | None:
    document = LIBRARY.get(request.match["doc_id"])
    if document is None:
        return None
    if not document.readable_by(request.viewer_id):
        return Preview.inaccessible(request.link)
    return preview_of(document)


@bot.link_collection
def recent(request: PreviewRequest) -> list[Preview]:
    readable = [d for d in LIBRARY.values() if d.readable_by(request.viewer_id)]
    return [preview_of(d) for d in sorted(readable, key=lambda d: d.edited, reverse=True)[:5]]


@bot.on_message(r"(?i)^\s*find\s+(?P<words>\S.*)$")
def find(event: Message, ctx: Context) -> None:
    assert ctx.match is not None  # the text pattern matched, or this handler would not run
    words = ctx.match.group("words").lower().split()
    hits = [d for d in LIBRARY.values() if d.readable_by(event.sender_id)
            and all(w in f"{d.title} {d.summary}".lower() for w in words)]
    if not hits:
        ctx.reply("No document you can read matches that.")
        return
    ctx.reply("\n".join(f"{d.title}: {d.url}" for d in hits[:5]))


@bot.on_message()
def usage(event: Message, ctx: Context) -> None:
    ctx.reply("Share a docs.example.com link and I'll preview it, or type 'find <words>'.")

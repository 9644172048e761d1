"""``PreviewRequest``: what a resolver is asked, for one link and one viewer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class PreviewRequest:
    """A link shared in a post or chat, asked about by one viewer."""

    link: str
    viewer_id: str | None
    community_id: str | None = None
    match: dict[str, str] = field(default_factory=dict)
    regex: re.Match[str] | None = None
    #: The delivery the request came with (a ``bots`` ``LinkRequest``); narrow it with ``isinstance``.
    event: object = None

    @property
    def host(self) -> str:
        return urlsplit(self.link).hostname or ""

    @property
    def path(self) -> str:
        return urlsplit(self.link).path or "/"


def normalise(link: str) -> str:
    """The link in one spelling for cache keys: lower-case scheme and host, no fragment, no default port."""
    parts = urlsplit(link.strip())
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port and not ((parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", parts.query, ""))

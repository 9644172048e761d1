"""Read what a page says about itself: OpenGraph (``og:*``), Twitter cards (``twitter:*``), ``<title>``.

Each field takes the first source that has it, in the order of :data:`SOURCES`. Text is stripped,
whitespace collapsed and capped at the preview's limits; URLs are made absolute against the page (or
its ``<base href>``) and kept only when they are http(s), so a ``javascript:`` image never reaches a
preview. Only what the page declares is read: no ``/favicon.ico`` is guessed.
"""

from __future__ import annotations

from typing import TypedDict
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup

from .preview import DESCRIPTION_MAX, TITLE_MAX

TYPE_MAX = 50
SITE_NAME_MAX = 300
FIELDS = ("title", "description", "image", "icon", "canonical_link", "type", "site_name")
#: Where each field comes from, best first: ``meta:<property or name>``, ``link:<rel>`` or ``title``.
SOURCES: dict[str, tuple[str, ...]] = {
    "title": ("meta:og:title", "meta:twitter:title", "title"),
    "description": ("meta:og:description", "meta:twitter:description", "meta:description"),
    "image": ("meta:og:image", "meta:og:image:url", "meta:og:image:secure_url", "meta:twitter:image",
              "meta:twitter:image:src"),
    "icon": ("link:icon", "link:shortcut icon", "link:apple-touch-icon", "link:apple-touch-icon-precomposed"),
    "canonical_link": ("meta:og:url", "link:canonical"),
    "type": ("meta:og:type",),
    "site_name": ("meta:og:site_name",),
}
URL_FIELDS = ("image", "icon", "canonical_link")
CAPS = {"title": TITLE_MAX, "description": DESCRIPTION_MAX, "site_name": SITE_NAME_MAX}


class Metadata(TypedDict):
    """What a page says about itself, one entry per name in :data:`FIELDS`; None where it says nothing."""

    title: str | None
    description: str | None
    image: str | None
    icon: str | None
    canonical_link: str | None
    type: str | None
    site_name: str | None


def read_metadata(html: str, base_url: str) -> Metadata:
    """The page's own title, description, image, icon, canonical link, type and site name; None where absent.

    ``base_url`` is the URL the page was fetched from (after redirects): relative URLs resolve against it.
    """
    soup = BeautifulSoup(html, "html.parser")
    found = _sources(soup)
    base = _base(soup, base_url)

    def first(name: str) -> str | None:
        values = (found.get(source, []) for source in SOURCES[name])
        return next((v for group in values for raw in group if (v := _value(name, raw, base))), None)

    return Metadata(title=first("title"), description=first("description"), image=first("image"),
                    icon=first("icon"), canonical_link=first("canonical_link"), type=first("type"),
                    site_name=first("site_name"))


def _sources(soup: BeautifulSoup) -> dict[str, list[str]]:
    """Every candidate value by source key, in document order."""
    found: dict[str, list[str]] = {}
    for tag in soup.find_all("meta"):
        key = tag.get("property") or tag.get("name")
        content = tag.get("content")
        if isinstance(key, str) and isinstance(content, str):
            found.setdefault(f"meta:{key.strip().lower()}", []).append(content)
    for tag in soup.find_all("link"):
        rel = " ".join(tag.get("rel") or ()).strip().lower()
        href = tag.get("href")
        if rel and isinstance(href, str):
            found.setdefault(f"link:{rel}", []).append(href)
    title = soup.find(lambda tag: tag.name == "title" and tag.find_parent("svg") is None)
    if title is not None:
        found["title"] = [title.get_text()]
    return found


def _base(soup: BeautifulSoup, page_url: str) -> str:
    """The URL relative links resolve against: the page's ``<base href>`` if it is http(s), else the page."""
    tag = soup.find("base", href=True)
    href = tag.get("href") if tag is not None else None
    if not isinstance(href, str):
        return page_url
    return _absolute(href, page_url) or page_url


def _value(name: str, raw: str, base: str) -> str | None:
    if name in URL_FIELDS:
        return _absolute(raw, base)
    text = " ".join(raw.split())
    if name == "type":
        return text if len(text) <= TYPE_MAX else None
    return _cap(text, CAPS[name]) or None


def _cap(text: str, most: int) -> str:
    """``text`` cut to at most ``most`` characters, an ellipsis marking the cut."""
    return text if len(text) <= most else text[:most - 1].rstrip() + "…"


def _absolute(raw: str, base: str) -> str | None:
    """``raw`` resolved against ``base`` if the result is an http(s) URL with a host, else None.

    Tabs and line breaks are dropped and spaces escaped, as a browser does.
    """
    url = raw.strip().translate({9: None, 10: None, 13: None}).replace(" ", "%20")
    if not url:
        return None
    try:
        url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None

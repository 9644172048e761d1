"""Which resolver answers a link: registrations by domain (covering subdomains) and path pattern.

The most specific registration wins: the longest matching domain, then one with a path pattern
over one without. Two registrations that would claim the same links are refused at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .preview import Preview
from .request import PreviewRequest

#: A ``@bot.link_preview`` handler: the preview of one link for one viewer, or None for no preview.
Resolver = Callable[[PreviewRequest], Preview | None]
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


class ConflictError(ValueError):
    """Two registrations claim the same links."""


@dataclass(frozen=True)
class Registration:
    """One ``@bot.link_preview(domain, path=...)``: a resolver, or the OpenGraph fetcher (``fetch``)."""

    bot: str
    domain: str
    path: re.Pattern[str] | None
    resolver: Resolver | None
    fetch: bool = False
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        target = "fetch" if self.fetch else getattr(self.resolver, "__qualname__", repr(self.resolver))
        return f"{self.bot}: {self.domain}{' ' + self.path.pattern if self.path else ''} -> {target}"

    def claims(self, host: str, path: str) -> re.Match[str] | bool | None:
        """Whether this registration covers ``host`` and ``path``; a path match is handed on."""
        if host != self.domain and not host.endswith("." + self.domain):
            return None
        if self.path is None:
            return True
        return self.path.search(path)


def domain_of(value: str) -> str:
    """A registered domain in canonical form; ValueError for anything that is not a host name."""
    domain = value.strip().lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain) or "." not in domain:
        raise ValueError(f"link-preview domain {value!r} is not a host name such as docs.example.com")
    return domain


class Registry:
    """Every registration of the bots one app serves."""

    def __init__(self, registrations: Iterable[Registration] = ()) -> None:
        self.registrations: list[Registration] = []
        for registration in registrations:
            self.add(registration)

    def add(self, registration: Registration) -> None:
        """Register, refusing one that claims exactly the links another claims."""
        for other in self.registrations:
            same_path = (other.path.pattern if other.path else None) == (
                registration.path.pattern if registration.path else None)
            if other.domain == registration.domain and same_path:
                raise ConflictError(f"two link-preview registrations claim the same links: {other.label} and "
                                    f"{registration.label}")
        self.registrations.append(registration)

    def find(self, link: str, bot: str | None = None) -> tuple[Registration, re.Match[str] | bool] | None:
        """The most specific registration for ``link`` (of ``bot``, if given) and its path match, or None."""
        try:
            parts = urlsplit(link)
            host = (parts.hostname or "").rstrip(".")
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not host:
            return None
        best: tuple[tuple[int, int], Registration, re.Match[str] | bool] | None = None
        for registration in self.registrations:
            if bot is not None and registration.bot != bot:
                continue
            found = registration.claims(host, parts.path or "/")
            if not found:
                continue
            rank = (registration.domain.count("."), registration.path is not None)
            if best is None or rank > best[0]:
                best = (rank, registration, found)
        return (best[1], best[2]) if best else None

    @property
    def domains(self) -> list[str]:
        return sorted({registration.domain for registration in self.registrations})

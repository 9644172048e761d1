"""Fetch one HTML page for a preview, through the SSRF guard, within a time and size budget.

Every hop — the first URL and each redirect, at most ``max_redirects`` — is checked by the
:class:`~linkpreview.guard.FetchPolicy`, and the connection goes to the addresses that check
resolved, never to a second lookup, so a name cannot be re-pointed at an internal address between
the check and the connection (DNS rebinding). The ``Host`` header, TLS SNI and certificate check
keep the URL's host name. ``timeout`` bounds the whole fetch — connections, redirects and body
together, look-ups counted but not cut short — and a watchdog shuts the connection when it runs
out, so headers or a body that trickle in a byte at a time are stopped too. No cookies are kept or
sent back, no proxy or ``.netrc`` from the environment is used (``REQUESTS_CA_BUNDLE`` still is, so
an intranet CA can be trusted), and the configured headers go only to the host they were given for.
"""

from __future__ import annotations

import codecs
import http.cookiejar
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection

from .guard import FetchPolicy, FetchRefused, Target

MAX_BYTES = 1024 * 1024
HTML_TYPES = ("text/html", "application/xhtml+xml")
DEFAULT_HEADERS = {"User-Agent": "Mozilla/5.0 (compatible; linkpreview/1.0)",
                   "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"}
CHUNK = 16 * 1024
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([a-z0-9._:-]+)", re.IGNORECASE)
_NO_COOKIES = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])


class FetchFailed(Exception):
    """The page could not be fetched: a network error, the time budget, or a non-2xx answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Page:
    """A fetched HTML page: the URL asked for, the one answered after redirects, and the decoded text."""

    url: str
    final_url: str
    status: int
    content_type: str
    text: str


def fetch(url: str, policy: FetchPolicy, headers: Mapping[str, str] | None = None, timeout: float = 3.0,
          max_bytes: int = MAX_BYTES, max_redirects: int = 3) -> Page:
    """GET the HTML page at ``url`` as ``policy`` allows; raises :class:`FetchRefused` or :class:`FetchFailed`.

    ``headers`` (service credentials, say) are sent to ``url``'s host only, never to a host a
    redirect leads to, nor over plain http after https.
    """
    budget = _Budget(timeout)
    with _answer(url, policy, headers or {}, budget, max_redirects) as (target, response):
        content_type, text = _read(response, target, budget, max_bytes)
        return Page(url, target.url, response.status_code, content_type, text)


def media_type(url: str, policy: FetchPolicy, timeout: float = 2.0, max_redirects: int = 3) -> tuple[int, str]:
    """The HTTP status and media type ``url`` answers a GET with, as ``policy`` allows, its body unread: whether
    an image URL someone gave loads, asked through the same guard as a page; raises :class:`FetchRefused` or
    :class:`FetchFailed`."""
    budget = _Budget(timeout)
    with _answer(url, policy, {}, budget, max_redirects) as (_, response):
        return response.status_code, _content_type(response.headers.get("Content-Type", ""))[0]


@contextmanager
def _answer(url: str, policy: FetchPolicy, headers: Mapping[str, str], budget: _Budget,
            max_redirects: int) -> Iterator[tuple[Target, requests.Response]]:
    """The answer at the end of ``url``'s redirects (each hop checked by ``policy``), open while the block runs."""
    session = _session()
    try:
        first = target = policy.check(url)
        redirects = 0
        while True:
            response = _get(session, target, _headers_for(headers, first, target), budget)
            with response:
                location = session.get_redirect_target(response)
                if location is None:
                    yield target, response
                    return
            if redirects == max_redirects:
                raise FetchRefused(f"{first.host} redirected more than {max_redirects} times")
            redirects += 1
            target = _follow(policy, target, location)
    finally:
        session.close()
        budget.close()


class _Budget:
    """The time a whole fetch may take; when it runs out, every socket opened for the fetch is shut."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._expired or time.monotonic() >= self.deadline

    def left(self, host: str) -> float:
        """Seconds still available; raises :class:`FetchFailed` when none are."""
        left = self.deadline - time.monotonic()
        if left <= 0 or self._expired:
            raise self.failure(host)
        return left

    def failure(self, host: str) -> FetchFailed:
        return FetchFailed(f"fetching {host} ran past the {self.seconds:g} s budget")

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` when the budget runs out (at once if it already has)."""
        with self._lock:
            self._sockets.append(sock)
            if self._expired:
                _shut(sock)

    def close(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake any thread blocked on ``sock`` with an end of stream; a socket already closed is left alone."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _PinnedConnection(HTTPConnection):
    """Connects to the addresses the guard checked, in order, whatever the host name resolves to now.

    Mixed in before ``HTTPConnection`` or ``HTTPSConnection``; its arguments are theirs, plus these two.
    """

    def __init__(self, *args: Any, addresses: Sequence[str], budget: _Budget, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.addresses = addresses
        self.budget = budget

    def _new_conn(self) -> socket.socket:
        error: Exception = NewConnectionError(self, "no address to connect to")
        for address in self.addresses:
            try:
                wait = self.budget.left(self.host)
                sock = connection.create_connection((address, self.port), wait, source_address=self.source_address,
                                                    socket_options=self.socket_options)
            except FetchFailed:
                raise ConnectTimeoutError(self, f"Connection to {self.host} ran out of time") from None
            except TimeoutError:
                error = ConnectTimeoutError(self, f"Connection to {self.host} timed out")
            except OSError as failure:
                error = NewConnectionError(self, f"Failed to establish a new connection: {failure}")
            else:
                self.budget.watch(sock)
                return sock
        raise error


class _PinnedHTTPConnection(_PinnedConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnection, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedAdapter(HTTPAdapter):
    """A transport for one checked :class:`Target`: its own pool, pinned to the checked addresses."""

    def __init__(self, target: Target, budget: _Budget) -> None:
        super().__init__(max_retries=0)
        self.target = target
        pool = _PinnedHTTPSPool if target.scheme == "https" else _PinnedHTTPPool
        self.pool = pool(target.host, target.port, maxsize=1, addresses=target.addresses, budget=budget)

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: bool | str,
                                        proxies: dict[str, str] | None = None,
                                        cert: str | tuple[str, str] | None = None) -> HTTPConnectionPool:
        host = urlsplit(request.url or "").hostname
        if host != self.target.host:
            raise FetchRefused(f"a request for {host} reached the pin for {self.target.host}")
        return self.pool

    def close(self) -> None:
        self.pool.close()
        super().close()


def _session() -> requests.Session:
    """A session that keeps no cookies and takes no proxy or credentials from the environment."""
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(_NO_COOKIES)
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return session


def _headers_for(configured: Mapping[str, str], first: Target, target: Target) -> dict[str, str]:
    """The request headers for ``target``: the configured ones only on the first host, and not downgraded."""
    same = target.host == first.host and not (first.scheme == "https" and target.scheme == "http")
    return {**DEFAULT_HEADERS, **(configured if same else {})}


def _get(session: requests.Session, target: Target, headers: dict[str, str], budget: _Budget) -> requests.Response:
    left = budget.left(target.host)
    session.close()
    adapter = _PinnedAdapter(target, budget)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    try:
        return session.get(target.url, headers=headers, stream=True, allow_redirects=False, timeout=(left, left))
    except requests.RequestException as error:
        raise _failure(target, error, budget) from None


def _follow(policy: FetchPolicy, target: Target, location: str) -> Target:
    """The checked target of a redirect; ``location`` may be relative to the page that sent it."""
    try:
        return policy.check(urljoin(target.url, location))
    except FetchRefused as refused:
        raise FetchRefused(f"{target.host} redirected to a refused URL: {refused.reason}") from None


def _read(response: requests.Response, target: Target, budget: _Budget, max_bytes: int) -> tuple[str, str]:
    """The content type and decoded text of a 2xx HTML answer; anything else is refused or failed."""
    if not 200 <= response.status_code < 300:
        raise FetchFailed(f"{target.host} answered HTTP {response.status_code}")
    content_type, charset = _content_type(response.headers.get("Content-Type", ""))
    if content_type not in HTML_TYPES:
        raise FetchRefused(f"{target.host} answered {content_type or 'no content type'}, not HTML")
    length = response.headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > max_bytes:
        raise FetchRefused(f"{target.host} announced {length} bytes, over the {max_bytes}-byte cap")
    return content_type, _decode(_body(response, target, budget, max_bytes), charset)


def _body(response: requests.Response, target: Target, budget: _Budget, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise FetchRefused(f"{target.host} sent more than the {max_bytes}-byte cap")
            budget.left(target.host)
            chunks.append(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        raise _failure(target, error, budget) from None
    budget.left(target.host)
    return b"".join(chunks)


def _failure(target: Target, error: Exception, budget: _Budget) -> FetchFailed:
    """The :class:`FetchFailed` for a transport error, named by its kind only (its text may hold the URL)."""
    if budget.expired:
        return budget.failure(target.host)
    if isinstance(error, requests.Timeout):
        return FetchFailed(f"{target.host} timed out")
    if isinstance(error, requests.exceptions.SSLError):
        return FetchFailed(f"the TLS connection to {target.host} failed (untrusted or mismatched certificate?)")
    return FetchFailed(f"{target.host} could not be fetched ({error.__class__.__name__})")


def _content_type(header: str) -> tuple[str, str | None]:
    """The media type of a ``Content-Type`` header, lower-cased, and its charset if it names one."""
    media, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media.strip().lower(), charset


def _decode(body: bytes, charset: str | None) -> str:
    """Text by the byte-order mark, else the header's charset, else a ``<meta>`` charset, else UTF-8."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(codec, "replace")
    meta = _META_CHARSET.search(body[:4096])
    for name in (charset, meta and meta.group(1).decode("ascii")):
        if name:
            try:
                return body.decode(name, "replace")
            except LookupError:
                continue
    return body.decode("utf-8", "replace")

"""Which integration logos a page may show: a logo URL is checked once (an image answered in time)
and remembered for a while, so a page renders ``<img>`` only for a logo that loads and shows the
letter avatar otherwise, instead of sending the browser to a URL that fails in its console.

Logo and preview-icon URLs come from admins and bots, so the check goes through the link previews'
SSRF guard: public addresses, plus what ``EMULATOR_FETCH_ALLOW`` lists (default loopback, where a
local bot server serves its own logo); private ranges and the cloud metadata addresses are never asked.
"""

from __future__ import annotations

import os
import threading
import time

from linkpreview.fetch import FetchFailed, media_type
from linkpreview.guard import FetchPolicy, FetchRefused

CHECK_SECONDS = 2.0
REMEMBER_SECONDS = 300.0
DEFAULT_ALLOW = "127.0.0.0/8,::1"

_checked: dict[str, tuple[bool, float]] = {}
_lock = threading.Lock()


def loadable(url: str | None) -> bool:
    """Whether ``url`` (http or https) answers an image; remembered for REMEMBER_SECONDS either way."""
    if not url or not url.startswith(("http://", "https://")):
        return False
    with _lock:
        known = _checked.get(url)
    if known and time.monotonic() - known[1] < REMEMBER_SECONDS:
        return known[0]
    answer = _fetches_an_image(url)
    with _lock:
        _checked[url] = (answer, time.monotonic())
    return answer


def _fetches_an_image(url: str) -> bool:
    """One guarded GET that reads only the headers: a 200 whose Content-Type is an image."""
    try:
        status, media = media_type(url, _policy(), timeout=CHECK_SECONDS)
    except (FetchRefused, FetchFailed):
        return False
    return status == 200 and media.startswith("image/")


def _policy() -> FetchPolicy:
    """The addresses a logo check may reach, from ``EMULATOR_FETCH_ALLOW`` (default: loopback)."""
    return FetchPolicy.from_setting(os.environ.get("EMULATOR_FETCH_ALLOW", DEFAULT_ALLOW))


def forget() -> None:
    """Check every logo again on its next use (a saved logo URL may point at a new image)."""
    with _lock:
        _checked.clear()

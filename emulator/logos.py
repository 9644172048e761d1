"""Which integration logos a page may show: a logo URL is checked once (an image answered in time)
and remembered for a while, so a page renders ``<img>`` only for a logo that loads and shows the
letter avatar otherwise, instead of sending the browser to a URL that fails in its console.
"""

from __future__ import annotations

import threading
import time

import requests

CHECK_SECONDS = 2.0
REMEMBER_SECONDS = 300.0

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
    """One GET that reads only the headers: a 200 whose Content-Type is an image."""
    try:
        with requests.get(url, timeout=CHECK_SECONDS, stream=True, allow_redirects=True) as answer:
            return answer.status_code == 200 and answer.headers.get("Content-Type", "").startswith("image/")
    except requests.RequestException:
        return False


def forget() -> None:
    """Check every logo again on its next use (a saved logo URL may point at a new image)."""
    with _lock:
        _checked.clear()

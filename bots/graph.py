"""The Graph API client a bot answers through: Bearer token, appsecret_proof, time-outs, retries.

One pooled ``requests.Session`` per bot. What the client does on each kind of failure:

- no answer (refused connection, reset, time-out), HTTP 5xx, and Graph codes 1, 2, 4, 17, 32, 613,
  80001-80006: retried with exponential backoff and full jitter, honouring ``Retry-After``;
- any other Graph error (100 bad parameter, 190 bad token, 10 and 200-299 permission, 551
  recipient unavailable ...): raised at once as :class:`GraphError`;
- ``X-App-Usage`` / ``X-Business-Use-Case-Usage`` above 80 %: the next calls wait a little first.

A retried POST can repeat its effect: when a call times out after Graph accepted it, the retry
sends the message again. Graph has no idempotency key for the Send API, so a person may see a
message twice in that case; the durable outbox (bots/inbox) keeps that window to one call.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

import requests

from .errors import GraphError
from .signature import appsecret_proof, timed_proof

logger = logging.getLogger("bots.graph")

CONNECT_TIMEOUT = 3.05
#: Sent with every outbox delivery, the same on each retry. Graph ignores it; the emulator (and any
#: proxy that honours it) answers a repeat with the first answer instead of acting twice.
IDEMPOTENCY_HEADER = "X-Idempotency-Key"
USAGE_HEADERS = ("X-App-Usage", "X-Business-Use-Case-Usage", "X-Ad-Account-Usage")


class GraphTransport(Protocol):
    """What a bot's Graph calls go through: :class:`GraphClient`, or a stand-in that answers as Graph does."""

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                params: dict[str, Any] | None = None, token: str | None = None,
                idempotency_key: str | None = None) -> dict[str, Any]:
        """One call; Graph's answer, or :class:`~bots.errors.GraphError` when it fails for good."""

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """A GET with ``params`` as its query."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a retryable failure is tried again."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): full jitter, or ``Retry-After``."""
        backoff = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (retry - 1)))
        if retry_after is not None:
            return min(self.max_retry_after, max(retry_after, backoff))
        return backoff


class UsageGovernor:
    """Reads the usage headers and paces calls once the app nears its rate limit.

    Below ``threshold`` percent nothing waits; from there the pause grows linearly to
    ``max_pause`` seconds at 100 %.
    """

    def __init__(self, threshold: float = 80.0, max_pause: float = 5.0, sleep: Callable[[float], None] = time.sleep):
        self.threshold = threshold
        self.max_pause = max_pause
        self.usage = 0.0
        self._sleep = sleep

    def observe(self, headers: Any) -> None:
        """Take the highest percentage any usage header reports."""
        found = [value for name in USAGE_HEADERS if (raw := headers.get(name)) for value in _percentages(raw)]
        if found:
            self.usage = max(found)

    def pause(self) -> float:
        """Seconds to wait before the next call at the last observed usage."""
        if self.usage < self.threshold:
            return 0.0
        share = min(1.0, (self.usage - self.threshold) / max(1e-9, 100.0 - self.threshold))
        return self.max_pause * max(share, 0.05)

    def wait(self) -> None:
        if (seconds := self.pause()) > 0:
            logger.info("Graph API usage at %.0f%%: pausing %.2f s before the next call", self.usage, seconds)
            self._sleep(seconds)


class GraphClient:
    """Calls the Graph API (Workplace, Messenger, or the local emulator) as one integration."""

    def __init__(self, base_url: str, access_token: str, app_secret: str, *, proof: str = "timed",
                 timeout: float = 10.0, session: requests.Session | None = None, retry: RetryPolicy | None = None,
                 on_call: Callable[[], None] | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_answer: Callable[[str, int | None, int | None], None] | None = None,
                 on_retry: Callable[[], None] | None = None) -> None:
        """``on_call`` is called before each try; ``on_answer`` after it with the path, the HTTP status (None:
        no answer) and the Graph error code (None: none); ``on_retry`` before a retry (the metrics use both)."""
        self.base_url = base_url.rstrip("/")
        self.proof = proof
        self.timeout = (CONNECT_TIMEOUT, timeout)
        self.retry = retry or RetryPolicy()
        self.governor = UsageGovernor(sleep=sleep)
        self.on_call = on_call
        self.on_answer = on_answer
        self.on_retry = on_retry
        self._token = access_token
        self._secret = app_secret
        self._sleep = sleep
        self._lock = threading.Lock()
        self.session = session or _session(self.base_url)
        self.session.headers["Authorization"] = f"Bearer {access_token}"

    def __repr__(self) -> str:
        return f"<GraphClient {self.base_url}>"

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST ``body`` as JSON to ``path`` (``me/messages``, ``123/comments``) and return the answer."""
        return self.request("POST", path, json=body or {})

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET ``path``; list values in ``params`` (``fields=[...]``) are joined with commas."""
        params = {k: ",".join(v) if isinstance(v, (list, tuple)) else v for k, v in params.items()}
        return self.request("GET", path, params=params)

    def delete(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """DELETE ``path``, with an optional JSON body (``participants`` takes one)."""
        return self.request("DELETE", path, json=body)

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                params: dict[str, Any] | None = None,
                token: str | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
        """One logical call, retried on passing faults; raises :class:`GraphError` when it fails for good.

        ``token`` replaces the access token for this call (the app token ``APP_ID|APP_SECRET``
        that ``/app/subscriptions`` needs); such calls carry no appsecret_proof.
        ``idempotency_key`` is sent as ``X-Idempotency-Key`` on every try of this call.
        """
        url = f"{self.base_url}/{quote(path.lstrip('/'), safe='/:,|')}"
        for attempt in range(1, self.retry.attempts + 1):
            self.governor.wait()
            try:
                return self._once(method, url, path, json, params, token, idempotency_key)
            except GraphError as error:
                if not error.retryable or attempt == self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt, error.retry_after)
                logger.warning("%s /%s failed (%s); retry %d of %d in %.2f s", method, path.lstrip("/"),
                               error, attempt, self.retry.attempts - 1, delay)
                if self.on_retry:
                    self.on_retry()
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _once(self, method: str, url: str, path: str, body: dict[str, Any] | None, params: dict[str, Any] | None,
              token: str | None, idempotency_key: str | None = None) -> dict[str, Any]:
        query = dict(params or {})
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        if token is None:
            query.update(self._proof())
        else:
            headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        if self.on_call:
            self.on_call()
        try:
            response = self.session.request(method, url, params=query, json=body, timeout=self.timeout,
                                            headers=headers)
        except requests.RequestException as exc:
            self._answered(path, None, None)
            raise GraphError(f"{method} /{path.lstrip('/')}: no answer ({type(exc).__name__})") from None
        self.governor.observe(response.headers)
        try:
            answer = _answer(method, path, response)
        except GraphError as error:
            self._answered(path, response.status_code, error.code)
            raise
        self._answered(path, response.status_code, None)
        return answer

    def _answered(self, path: str, status: int | None, code: int | None) -> None:
        if self.on_answer:
            self.on_answer(path, status, code)

    def _proof(self) -> dict[str, str]:
        if self.proof == "off":
            return {}
        if self.proof == "classic":
            return appsecret_proof(self._token, self._secret)
        return timed_proof(self._token, self._secret)


def _session(base_url: str) -> requests.Session:
    """A pooled session whose proxy and CA settings are read from the environment once, not on
    every call (requests re-reads them per request, a quarter of a call's cost here)."""
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    return session


def _answer(method: str, path: str, response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.ok and isinstance(data, dict) and "error" not in data:
        return data
    error = data.get("error") if isinstance(data, dict) else None
    retry_after = _retry_after(response.headers.get("Retry-After"))
    if not isinstance(error, dict):
        raise GraphError(f"{method} /{path.lstrip('/')}: HTTP {response.status_code} without a Graph answer",
                         status=response.status_code, retry_after=retry_after)

    def number(key: str) -> int | None:
        value = error.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    raise GraphError(str(error.get("message") or "Graph API error"), code=number("code"),
                     subcode=number("error_subcode"), type=error.get("type"),
                     fbtrace_id=error.get("fbtrace_id"), status=response.status_code, retry_after=retry_after)


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _percentages(raw: str) -> list[float]:
    """Every percentage in a usage header: ``{"call_count": 85, ...}`` or, per business, a list of those."""
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    found: list[float] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("call_count", "total_cputime", "total_time", "acc_id_util_pct") and \
                        isinstance(value, (int, float)) and not isinstance(value, bool):
                    found.append(float(value))
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found

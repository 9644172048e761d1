"""Outgoing webhooks, as Workplace sends them: the subscription handshake, signed deliveries
(``X-Hub-Signature-256`` and ``X-Hub-Signature``), several entries batched into one POST, and
retries with backoff on a non-200 or a time-out, on a compressed, configurable schedule.

Each (integration, topic) has a lane: entries queued while a POST is in flight or within the
batch window go out together in the next one, so one conversation keeps its order.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from bots.signature import SHA1_HEADER, SHA256_HEADER, sign

from .integrations import Integration, Integrations, field_permission
from .store import Store, now

logger = logging.getLogger("emulator.webhooks")

MAX_BATCH = 1000


@dataclass(frozen=True)
class DeliverySettings:
    """How patient the emulator is with a callback: time-out, retry delays (seconds), batch window."""

    timeout: float = 5.0
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    batch_window: float = 0.02
    preview_timeout: float = 3.0

    @classmethod
    def parse(cls, delays: str | None = None, timeout: str | None = None) -> DeliverySettings:
        """From ``EMULATOR_RETRY_DELAYS`` ("0.5,1,2,4") and ``EMULATOR_DELIVERY_TIMEOUT`` (seconds)."""
        base = cls()
        schedule = tuple(float(part) for part in delays.split(",") if part.strip()) if delays else base.retry_delays
        return cls(timeout=float(timeout) if timeout else base.timeout, retry_delays=schedule)


def check_callback_url(url: str) -> str | None:
    """Why ``url`` cannot be a callback URL, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the callback URL must be an http:// or https:// URL"
    if len(url) > 2000:
        return "the callback URL is too long"
    return None


def handshake(url: str, verify_token: str, timeout: float = 5.0) -> str | None:
    """Run the GET verification against ``url``; None when it answered the challenge, else the reason."""
    problem = check_callback_url(url)
    if problem:
        return problem
    challenge = str(secrets.randbelow(10**9))
    params = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
    try:
        response = _session().get(url, params=params, timeout=timeout)
    except requests.RequestException as error:
        return f"could not reach {url}: {type(error).__name__}"
    if response.status_code != 200:
        return f"{url} answered HTTP {response.status_code} to the verification request (check the verify token)"
    if response.text.strip() != challenge:
        return f"{url} answered 200 but not with the challenge ({response.text.strip()[:40]!r})"
    return None


@dataclass
class _Lane:
    pending: list[dict[str, Any]] = field(default_factory=list)
    busy: bool = False


class Courier:
    """Delivers entries to integrations' callback URLs in the background, logging each delivery."""

    def __init__(self, store: Store, integrations: Integrations, settings: DeliverySettings | None = None,
                 workers: int = 8) -> None:
        self.store = store
        self.integrations = integrations
        self.settings = settings or DeliverySettings()
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="emulator-webhooks")
        self._idle = threading.Condition(self._lock)

    def wants(self, integration: Integration, topic: str, field_name: str) -> bool:
        """True when ``integration`` is enabled, permitted and subscribed to ``topic``/``field_name``."""
        if not integration.enabled or not integration.has(field_permission(topic, field_name)):
            return False
        subscription = self.integrations.subscriptions(integration.id).get(topic)
        return subscription is not None and field_name in subscription.fields

    def send(self, integration: Integration, topic: str, field_name: str, entry: dict[str, Any]) -> bool:
        """Queue ``entry`` for the integration's ``topic`` callback; False when it does not want it."""
        if not self.wants(integration, topic, field_name):
            return False
        key = (integration.id, topic)
        with self._lock:
            lane = self._lanes.setdefault(key, _Lane())
            lane.pending.append(entry)
            if not lane.busy:
                lane.busy = True
                self._pool.submit(self._run, key, lane)
        return True

    def ask(self, integration: Integration, topic: str, field_name: str,
            entry: dict[str, Any]) -> dict[str, Any] | None:
        """Deliver one entry now and return the JSON answer (link previews answer in the body), or None."""
        if not self.wants(integration, topic, field_name):
            return None
        subscription = self.integrations.subscriptions(integration.id)[topic]
        log_id = self._log_start(integration.id, topic, 1)
        status, answer = self._post(integration, subscription.callback_url, topic, [entry],
                                    self.settings.preview_timeout, log_id, 1)
        self._log(log_id, "delivered" if status == 200 else "failed", attempts=1)
        self.integrations.live.admin(integration.id)
        return answer if status == 200 else None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or in flight (for tests and a clean shutdown)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(lane.busy for lane in self._lanes.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, key: tuple[str, str], lane: _Lane) -> None:
        time.sleep(self.settings.batch_window)
        while True:
            with self._lock:
                batch, lane.pending = lane.pending[:MAX_BATCH], lane.pending[MAX_BATCH:]
                if not batch:
                    lane.busy = False
                    self._idle.notify_all()
                    return
            try:
                self._deliver(key[0], key[1], batch)
            except Exception:
                logger.exception("delivery to integration %s failed unexpectedly", key[0])
            self.integrations.live.admin(key[0])

    def _deliver(self, integration_id: str, topic: str, entries: list[dict[str, Any]]) -> None:
        """POST the batch, retrying on the schedule; the log row follows every attempt."""
        log_id = self._log_start(integration_id, topic, len(entries))
        delays = (0.0, *self.settings.retry_delays)
        for attempt, delay in enumerate(delays, start=1):
            time.sleep(delay)
            integration = self.integrations.get(integration_id)
            subscription = self.integrations.subscriptions(integration_id).get(topic) if integration else None
            if integration is None or subscription is None or not integration.enabled:
                self._log(log_id, "dropped: integration disabled, deleted or unsubscribed", attempts=attempt - 1)
                return
            status, _ = self._post(integration, subscription.callback_url, topic, entries, self.settings.timeout,
                                   log_id, attempt)
            if status == 200:
                self._log(log_id, "delivered", attempts=attempt)
                return
        self._log(log_id, "gave up", attempts=len(delays))
        logger.warning("gave up delivering %d %s entries to %s after %d attempts", len(entries), topic,
                       integration_id, len(delays))

    def _post(self, integration: Integration, url: str, topic: str, entries: list[dict[str, Any]], timeout: float,
              log_id: int, attempt: int) -> tuple[int, dict[str, Any] | None]:
        raw = json.dumps({"object": topic, "entry": entries}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Workplace-Emulator/1.0",
                   SHA256_HEADER: sign(raw, integration.app_secret, "sha256"),
                   SHA1_HEADER: sign(raw, integration.app_secret, "sha1")}
        started = time.perf_counter()
        try:
            response = _session().post(url, data=raw, headers=headers, timeout=timeout)
        except requests.Timeout:
            self._log(log_id, "time-out", attempts=attempt, latency=started)
            return 0, None
        except requests.RequestException as error:
            self._log(log_id, f"no answer ({type(error).__name__})", attempts=attempt, latency=started)
            return 0, None
        self._log(log_id, f"HTTP {response.status_code}", attempts=attempt, latency=started)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        return response.status_code, answer if isinstance(answer, dict) else None

    def _log_start(self, integration_id: str, topic: str, entries: int) -> int:
        log_id = self.store.execute("INSERT INTO deliveries (integration_id, time, topic, entries, status) "
                                    "VALUES (?, ?, ?, ?, 'sending')", (integration_id, now(), topic, entries))
        self.integrations.live.admin(integration_id)
        return log_id

    def _log(self, log_id: int, status: str, attempts: int, latency: float | None = None) -> None:
        if latency is None:
            self.store.execute("UPDATE deliveries SET status = ?, attempts = ? WHERE id = ?",
                               (status, attempts, log_id))
        else:
            millis = round((time.perf_counter() - latency) * 1000)
            self.store.execute("UPDATE deliveries SET detail = ?, attempts = ?, latency_ms = ? WHERE id = ?",
                               (status, attempts, millis, log_id))


_local = threading.local()


def _session() -> requests.Session:
    """One pooled session per thread; proxies from the environment are ignored (callbacks are local)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False
    return session

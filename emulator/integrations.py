"""Integrations as the Admin Panel keeps them: credentials, visibility, permissions, webhooks,
security settings, link-preview domains, fault injection and the Last API request figures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from bots.signature import appsecret_proof

from .live import Hub
from .store import Store, dumps, now

PROOF_WINDOW_SECONDS = 300

#: The Admin Panel's permissions, in its order.
PERMISSIONS = ("Message any member", "Read group content", "Manage group content", "Mention bot", "Link previews",
               "Read user email", "Read user status", "Manage accounts", "Read security logs")

#: Webhook topics and their fields, in the Admin Panel's order; the page topic takes Messenger's page fields
#: too (messaging_optins, message_echoes ...), as Workplace did (docs/workplace-fidelity.md).
TOPICS = {
    "page": ("messages", "messaging_postbacks", "message_deliveries", "message_reads", "mention", "messaging_optins",
             "message_echoes", "message_reactions", "messaging_referrals", "messaging_handovers"),
    "group": ("posts", "comments", "membership"),
    "user": ("status", "events"),
    "workplace_security": ("admin_activity", "sessions"),
    "link": ("preview", "collection"),
}


def field_permission(topic: str, field_name: str) -> str:
    """The permission an integration needs to receive ``topic``/``field_name`` deliveries."""
    if topic == "page":
        return "Mention bot" if field_name == "mention" else "Message any member"
    return {"group": "Read group content", "user": "Read user status", "workplace_security": "Read security logs",
            "link": "Link previews"}[topic]


@dataclass
class Subscription:
    """One topic's webhook: where deliveries go, the verify token, and the fields wanted."""

    topic: str
    callback_url: str
    verify_token: str
    fields: list[str]


@dataclass
class Integration:
    """One custom integration, as its row in the database."""

    id: str
    name: str
    app_secret: str
    access_token: str | None
    page_id: str
    description: str = ""
    logo_url: str = ""
    enabled: bool = True
    discoverable: bool = False
    permissions: list[str] = field(default_factory=list)
    require_proof: bool = False
    ip_allow: str = ""
    link_domains: list[str] = field(default_factory=list)
    error_rate: float = 0.0
    latency_ms: int = 0
    profile: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Integration:
        data = dict(row)
        for name in ("permissions", "link_domains", "profile"):
            data[name] = json.loads(data[name])
        for name in ("enabled", "discoverable", "require_proof"):
            data[name] = bool(data[name])
        return cls(**data)

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def listed(self) -> bool:
        """Shown in Work Chat's bot directory: enabled, discoverable and allowed to message anyone."""
        return self.enabled and self.discoverable and self.has("Message any member")

    def proof_error(self, params: Mapping[str, str], at: float | None = None) -> str | None:
        """Why the call's appsecret_proof is refused, or None when it is valid (or not required)."""
        proof = params.get("appsecret_proof")
        if proof is None:
            return "appsecret_proof is required for this integration" if self.require_proof else None
        when = params.get("appsecret_time")
        if when is not None:
            if not when.isdigit():
                return "appsecret_time must be unix seconds"
            if abs(int(when) - (at or time.time())) > PROOF_WINDOW_SECONDS:
                return "appsecret_time is more than 5 minutes off"
        expected = appsecret_proof(self.access_token or "", self.app_secret, int(when) if when is not None else None)
        if not hmac.compare_digest(expected["appsecret_proof"].encode(), proof.encode()):
            return "appsecret_proof does not match"
        return None

    def ip_allowed(self, address: str | None) -> bool:
        """True when the allow list is empty or holds the caller's address."""
        networks = allow_list(self.ip_allow)
        if not networks:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in networks)

    def covers(self, host: str) -> int:
        """How specifically a link-preview domain covers ``host``: the length of the longest domain that is
        ``host`` or a parent of it, 0 when none is."""
        host = host.lower().rstrip(".")
        return max((len(d) for d in self.link_domains if host == d or host.endswith("." + d)), default=0)


def allow_list(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of an allow list written one per line or comma-separated; raises ValueError on a bad one."""
    parts = [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]
    return [ipaddress.ip_network(part, strict=False) for part in parts]


class Integrations:
    """The integrations table and everything hanging off it."""

    def __init__(self, store: Store, live: Hub | None = None) -> None:
        self.store = store
        self.live = live or Hub()
        #: Each integration's App Secret before its last reset, and when it was reset (for :meth:`retired_within`).
        self._retired_secrets: dict[str, tuple[str, float]] = {}

    def create(self, name: str, description: str = "", **settings: Any) -> Integration:
        """A new integration with a fresh App ID, App Secret and access token."""
        integration = Integration(
            id=settings.pop("id", None) or _digits(15), name=name, description=description,
            app_secret=settings.pop("app_secret", None) or secrets.token_hex(16),
            access_token=settings.pop("access_token", None) or new_token(),
            page_id=settings.pop("page_id", None) or _digits(15), created=now(), **settings)
        row = {f.name: getattr(integration, f.name) for f in fields(Integration)}
        for name in ("permissions", "link_domains", "profile"):
            row[name] = dumps(row[name])
        columns = ", ".join(row)
        self.store.execute(f"INSERT INTO integrations ({columns}) VALUES ({', '.join('?' * len(row))})",
                           row.values())
        return integration

    def all(self) -> list[Integration]:
        return [Integration.from_row(row) for row in self.store.all("SELECT * FROM integrations ORDER BY created")]

    def get(self, integration_id: str) -> Integration | None:
        row = self.store.one("SELECT * FROM integrations WHERE id = ?", (integration_id,))
        return Integration.from_row(row) if row else None

    def by_page(self, page_id: str) -> Integration | None:
        row = self.store.one("SELECT * FROM integrations WHERE page_id = ?", (page_id,))
        return Integration.from_row(row) if row else None

    def by_name(self, name: str) -> Integration | None:
        row = self.store.one("SELECT * FROM integrations WHERE lower(name) = lower(?)", (name,))
        return Integration.from_row(row) if row else None

    def by_token(self, token: str) -> Integration | None:
        """The integration holding access token ``token``, compared in constant time."""
        found = None
        for integration in self.all():
            if integration.access_token and hmac.compare_digest(integration.access_token.encode(), token.encode()):
                found = integration
        return found

    def by_app_token(self, token: str) -> Integration | None:
        """The integration named by an app token ``APP_ID|APP_SECRET``, the secret compared in constant time."""
        app_id, _, secret = token.partition("|")
        integration = self.get(app_id)
        if integration and hmac.compare_digest(integration.app_secret.encode(), secret.encode()):
            return integration
        return None

    def update(self, integration_id: str, **changes: Any) -> None:
        """Change some settings; lists and dicts are stored as JSON."""
        if not changes:
            return
        values = [dumps(v) if isinstance(v, (list, dict)) else v for v in changes.values()]
        assignments = ", ".join(f"{name} = ?" for name in changes)
        self.store.execute(f"UPDATE integrations SET {assignments} WHERE id = ?", [*values, integration_id])

    def reset_token(self, integration_id: str) -> str:
        """A new access token; the old one stops working at once (its digest is kept, so a call that still
        carries it is counted and explained)."""
        old = self.get(integration_id)
        token = new_token()
        self.update(integration_id, access_token=token)
        if old and old.access_token:
            self.store.execute("INSERT OR IGNORE INTO retired_tokens VALUES (?, ?, ?)",
                               (_digest(old.access_token), integration_id, now()))
        return token

    def reset_secret(self, integration_id: str) -> str:
        """A new App Secret: deliveries are signed with it and proofs must use it from now on."""
        old = self.get(integration_id)
        secret = secrets.token_hex(16)
        self.update(integration_id, app_secret=secret)
        if old is not None:
            self._retired_secrets[integration_id] = (old.app_secret, now())
        return secret

    def retired_within(self, integration: Integration, seconds: float, token: str | None = None) -> Integration | None:
        """``integration`` as it was before a reset less than ``seconds`` ago: with ``token`` when that is the
        access token it held (else its current one), and with its App Secret from before a recent secret reset.
        None when neither was reset that recently."""
        since = now() - seconds
        old_token = integration.access_token
        if token is not None:
            at = self.store.value("SELECT time FROM retired_tokens WHERE digest = ? AND integration_id = ?",
                                  (_digest(token), integration.id))
            if at is None or at < since:
                return None
            old_token = token
        secret, at = self._retired_secrets.get(integration.id, (integration.app_secret, 0.0))
        if at < since:
            if token is None:
                return None
            secret = integration.app_secret
        return replace(integration, access_token=old_token, app_secret=secret)

    def by_retired_token(self, token: str) -> Integration | None:
        """The integration whose access token ``token`` was before a reset."""
        found = self.store.value("SELECT integration_id FROM retired_tokens WHERE digest = ?", (_digest(token),))
        return self.get(found) if found else None

    def delete(self, integration_id: str) -> None:
        """Remove the integration, its subscriptions and its figures; its token dies with it."""
        integration = self.get(integration_id)
        with self.store.transaction() as db:
            for table in ("subscriptions", "calls", "deliveries", "retired_tokens"):
                db.execute(f"DELETE FROM {table} WHERE integration_id = ?", (integration_id,))
            db.execute("DELETE FROM integrations WHERE id = ?", (integration_id,))
            if integration:
                db.execute("DELETE FROM members WHERE member_id = ?", (integration.page_id,))

    def subscriptions(self, integration_id: str) -> dict[str, Subscription]:
        rows = self.store.all("SELECT * FROM subscriptions WHERE integration_id = ?", (integration_id,))
        return {row["topic"]: Subscription(row["topic"], row["callback_url"], row["verify_token"],
                                           json.loads(row["fields"])) for row in rows}

    def subscribe(self, integration_id: str, subscription: Subscription) -> None:
        self.store.execute(
            "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?) ON CONFLICT(integration_id, topic) DO UPDATE SET "
            "callback_url = excluded.callback_url, verify_token = excluded.verify_token, fields = excluded.fields",
            (integration_id, subscription.topic, subscription.callback_url, subscription.verify_token,
             dumps(subscription.fields)))

    def unsubscribe(self, integration_id: str, topic: str | None = None) -> None:
        if topic is None:
            self.store.execute("DELETE FROM subscriptions WHERE integration_id = ?", (integration_id,))
        else:
            self.store.execute("DELETE FROM subscriptions WHERE integration_id = ? AND topic = ?",
                               (integration_id, topic))

    def record_call(self, integration_id: str, method: str, path: str, status: int, code: int | None = None) -> None:
        """Count one Graph call for the Last API request figures; ``code`` is the Graph error of a refusal."""
        self.store.execute("INSERT INTO calls (integration_id, day, time, method, path, status, code) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", (integration_id, _today(), now(), method, path[:200],
                                                            status, code))
        self.live.admin(integration_id)

    def recent_calls(self, integration_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The latest calls, newest first, refusals with their Graph error code."""
        return self.store.all("SELECT time, method, path, status, code FROM calls WHERE integration_id = ? "
                              "ORDER BY id DESC LIMIT ?", (integration_id, limit))

    def last_request(self, integration_id: str, today: dt.date | None = None) -> dict[str, Any]:
        """The last day a call was made, and the calls on each of the last seven days (oldest first)."""
        today = today or dt.datetime.now(dt.UTC).date()
        last = self.store.value("SELECT max(day) FROM calls WHERE integration_id = ?", (integration_id,))
        days = [(today - dt.timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
        counts = {row["day"]: row["n"] for row in self.store.all(
            "SELECT day, count(*) AS n FROM calls WHERE integration_id = ? AND day >= ? GROUP BY day",
            (integration_id, days[0]))}
        return {"last_day": last, "days": [{"day": day, "calls": counts.get(day, 0)} for day in days]}

    def calls_in_last_hour(self, integration_id: str) -> int:
        return self.store.value("SELECT count(*) FROM calls WHERE integration_id = ? AND time > ?",
                                (integration_id, now() - 3600)) or 0

    def deliveries(self, integration_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.store.all("SELECT * FROM deliveries WHERE integration_id = ? ORDER BY id DESC LIMIT ?",
                              (integration_id, limit))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "EAAW" + secrets.token_urlsafe(36)


def _digits(count: int) -> str:
    return str(secrets.randbelow(9 * 10 ** (count - 1)) + 10 ** (count - 1))


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()

"""Settings from the environment: one prefix per bot (``HELPDESK_APP_SECRET``) and a few globals.

Read when the app is created, never at import, so a bot module imports without its secrets.
A missing or malformed value raises :class:`ConfigError` naming the variable, never the value
of a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import notices
from .errors import ConfigError

DEFAULT_GRAPH_API_URL = "https://graph.workplace.com"
PROOF_MODES = ("timed", "classic", "off")
INBOX_KINDS = ("sqlite", "memory", "celery")
#: ``step-out``: a failing event is retried on its own while its conversation goes on; ``strict``: it waits.
INBOX_ORDERS = ("step-out", "strict")
#: ``text``: readable lines (the default); ``json``: one JSON object per line, for log shippers.
LOG_FORMATS = ("text", "json")
#: ``fail``: a bot whose settings are missing or malformed stops start-up (production's default); ``skip``: the
#: server starts with the bots it can serve and logs how to fix each other one (``make run`` writes it in .env).
MISSING_SETTINGS = ("fail", "skip")
_SECRET = re.compile(r"[\x21-\x7e]{8,}")


@dataclass(frozen=True)
class BotSettings:
    """One bot's credentials, as the Admin Panel shows them."""

    name: str
    app_secret: str
    access_token: str
    verify_token: str
    app_id: str | None = None
    app_secret_previous: str | None = None
    appsecret_proof: str = "timed"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Secrets a delivery may be signed with: the current one, then one being rotated out."""
        if self.app_secret_previous:
            return (self.app_secret, self.app_secret_previous)
        return (self.app_secret,)

    def __repr__(self) -> str:
        return f"BotSettings(name={self.name!r}, app_id={self.app_id!r}, secrets=<hidden>)"


@dataclass(frozen=True)
class ServerSettings:
    """Settings shared by every bot this server runs."""

    graph_api_url: str = DEFAULT_GRAPH_API_URL
    max_body_bytes: int = 1024 * 1024
    workers: int = 8
    queue_limit: int = 10_000
    dedupe_ttl_seconds: int = 36 * 3600
    dedupe_max_keys: int = 200_000
    graph_timeout_seconds: float = 10.0
    graph_retry_attempts: int = 4
    graph_retry_base_ms: int = 500
    data_dir: str = "data"
    admin_token: str | None = None
    linkpreview_budget_ms: int = 3000
    linkpreview_cache_ttl_seconds: int = 300
    linkpreview_cache_max: int = 10_000
    linkpreview_allow: str = ""
    inbox: str = "sqlite"
    inbox_order: str = "step-out"
    inbox_lease_seconds: int = 30
    inbox_max_attempts: int = 5
    inbox_retry_base_ms: int = 1000
    outbox_threads: int = 4
    handler_process: bool = True
    outbox_max_attempts: int = 5
    redis_url: str | None = None
    max_json_depth: int = 64
    log_format: str = "text"
    metrics_token: str | None = None
    ready_max_age_seconds: int = 60
    proxy_hops: int = 0
    missing_settings: str = "fail"

    @property
    def skips_missing(self) -> bool:
        """True when a bot without its settings is left out (and logged) instead of stopping start-up."""
        return self.missing_settings == "skip"

    def __repr__(self) -> str:
        return (f"ServerSettings(graph_api_url={self.graph_api_url!r}, data_dir={self.data_dir!r}, "
                "admin_token=<hidden>, metrics_token=<hidden>)")


def bot_settings(name: str, env: Mapping[str, str]) -> BotSettings:
    """Read and check the settings of bot ``name`` from ``env``."""
    prefix = name.upper()

    def required_secret(suffix: str) -> str:
        variable = f"{prefix}_{suffix}"
        value = env.get(variable)
        if value is None:
            raise ConfigError(variable, notices.MISSING_SETTING.format(bot=name))
        return _secret(variable, value, name)

    def optional(suffix: str) -> tuple[str, str | None]:
        variable = f"{prefix}_{suffix}"
        value = env.get(variable)
        return variable, (value.strip() or None) if value is not None else None

    id_var, app_id = optional("APP_ID")
    if app_id is not None and not app_id.isdigit():
        raise ConfigError(id_var, notices.APP_ID_SHAPE)
    prev_var, previous = optional("APP_SECRET_PREVIOUS")
    if previous is not None:
        previous = _secret(prev_var, previous, name)
    proof_var, proof = optional("APPSECRET_PROOF")
    proof = (proof or "timed").lower()
    if proof not in PROOF_MODES:
        raise ConfigError(proof_var, notices.CHOICE_SHAPE.format(choices=", ".join(PROOF_MODES), value=proof))
    return BotSettings(
        name=name,
        app_secret=required_secret("APP_SECRET"),
        access_token=required_secret("ACCESS_TOKEN"),
        verify_token=required_secret("VERIFY_TOKEN"),
        app_id=app_id,
        app_secret_previous=previous,
        appsecret_proof=proof,
    )


def server_settings(env: Mapping[str, str]) -> ServerSettings:
    """Read and check the server-wide settings from ``env``; defaults fill what is absent."""
    defaults = ServerSettings()
    return ServerSettings(
        graph_api_url=_url("GRAPH_API_URL", env.get("GRAPH_API_URL", defaults.graph_api_url)),
        max_body_bytes=_int(env, "WEBHOOK_MAX_BYTES", defaults.max_body_bytes, 1024, 64 * 1024 * 1024),
        workers=_int(env, "HANDLER_THREADS", defaults.workers, 0, 256),
        queue_limit=_int(env, "HANDLER_QUEUE_LIMIT", defaults.queue_limit, 1, 10_000_000),
        dedupe_ttl_seconds=_int(env, "DEDUPE_TTL_SECONDS", defaults.dedupe_ttl_seconds, 1, 30 * 86400),
        dedupe_max_keys=_int(env, "DEDUPE_MAX_KEYS", defaults.dedupe_max_keys, 1, 100_000_000),
        graph_timeout_seconds=_int(env, "GRAPH_TIMEOUT_SECONDS", 10, 1, 120),
        graph_retry_attempts=_int(env, "GRAPH_RETRY_ATTEMPTS", defaults.graph_retry_attempts, 1, 10),
        graph_retry_base_ms=_int(env, "GRAPH_RETRY_BASE_MS", defaults.graph_retry_base_ms, 0, 60_000),
        data_dir=(env.get("DATA_DIR") or defaults.data_dir).strip(),
        admin_token=_secret("ADMIN_TOKEN", env["ADMIN_TOKEN"], "the server") if env.get("ADMIN_TOKEN") else None,
        linkpreview_budget_ms=_int(env, "LINKPREVIEW_BUDGET_MS", defaults.linkpreview_budget_ms, 50, 20_000),
        linkpreview_cache_ttl_seconds=_int(env, "LINKPREVIEW_CACHE_TTL_SECONDS",
                                           defaults.linkpreview_cache_ttl_seconds, 0, 7 * 86400),
        linkpreview_cache_max=_int(env, "LINKPREVIEW_CACHE_MAX", defaults.linkpreview_cache_max, 1, 10_000_000),
        linkpreview_allow=env.get("LINKPREVIEW_ALLOW", "").strip(),
        inbox=_inbox_kind(env),
        inbox_order=_choice(env, "INBOX_ORDER", INBOX_ORDERS),
        inbox_lease_seconds=_int(env, "INBOX_LEASE_SECONDS", defaults.inbox_lease_seconds, 1, 3600),
        inbox_max_attempts=_int(env, "INBOX_MAX_ATTEMPTS", defaults.inbox_max_attempts, 1, 100),
        inbox_retry_base_ms=_int(env, "INBOX_RETRY_BASE_MS", defaults.inbox_retry_base_ms, 0, 3_600_000),
        outbox_threads=_int(env, "OUTBOX_THREADS", defaults.outbox_threads, 0, 64),
        handler_process=bool(_int(env, "HANDLER_PROCESS", int(defaults.handler_process), 0, 1)),
        outbox_max_attempts=_int(env, "OUTBOX_MAX_ATTEMPTS", defaults.outbox_max_attempts, 1, 100),
        redis_url=_redis_url(env),
        max_json_depth=_int(env, "WEBHOOK_MAX_DEPTH", defaults.max_json_depth, 8, 512),
        log_format=_choice(env, "LOG_FORMAT", LOG_FORMATS),
        metrics_token=_secret("METRICS_TOKEN", env["METRICS_TOKEN"], "the server") if env.get("METRICS_TOKEN")
        else None,
        ready_max_age_seconds=_int(env, "READY_MAX_AGE_SECONDS", defaults.ready_max_age_seconds, 1, 86400),
        proxy_hops=_int(env, "PROXY_HOPS", defaults.proxy_hops, 0, 5),
        missing_settings=_choice(env, "MISSING_SETTINGS", MISSING_SETTINGS),
    )


def _inbox_kind(env: Mapping[str, str]) -> str:
    """``INBOX`` if given; otherwise Celery when ``REDIS_URL`` is set, else the embedded SQLite inbox."""
    raw = (env.get("INBOX") or "").strip().lower()
    if not raw:
        return "celery" if (env.get("REDIS_URL") or "").strip() else "sqlite"
    if raw not in INBOX_KINDS:
        raise ConfigError("INBOX", notices.CHOICE_SHAPE.format(choices=", ".join(INBOX_KINDS), value=raw))
    if raw == "celery" and not (env.get("REDIS_URL") or "").strip():
        raise ConfigError("INBOX", "is 'celery', which needs REDIS_URL (redis://host:6379/0)")
    return raw


def _choice(env: Mapping[str, str], variable: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first when unset); anything else stops start-up naming the variable."""
    raw = (env.get(variable) or "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigError(variable, notices.CHOICE_SHAPE.format(choices=", ".join(choices), value=raw))
    return raw


def _redis_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("REDIS_URL") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ConfigError("REDIS_URL", "is malformed: expected redis://host:6379/0 (value not shown)")
    return raw


def skips_missing(env: Mapping[str, str]) -> bool:
    """``MISSING_SETTINGS=skip`` in ``env``: what discovery asks before the server settings are read."""
    return _choice(env, "MISSING_SETTINGS", MISSING_SETTINGS) == "skip"


def selected_bots(env: Mapping[str, str]) -> list[str] | None:
    """The names in ``BOTS`` (comma-separated), or None when every bot is served."""
    raw = env.get("BOTS", "").strip()
    if not raw:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _secret(variable: str, value: str, bot: str) -> str:
    value = value.strip()
    if not value:
        raise ConfigError(variable, notices.EMPTY_SETTING.format(bot=bot))
    if not _SECRET.fullmatch(value):
        raise ConfigError(variable, notices.SECRET_SHAPE)
    return value


def _url(variable: str, value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(variable, notices.URL_SHAPE.format(value=value))
    return value


def _int(env: Mapping[str, str], variable: str, default: int, low: int, high: int) -> int:
    raw = env.get(variable)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(variable, notices.INT_SHAPE.format(low=low, high=high, value=raw)) from None
    if not low <= value <= high:
        raise ConfigError(variable, notices.INT_SHAPE.format(low=low, high=high, value=raw))
    return value

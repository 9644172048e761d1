"""Build the Flask app that serves a set of bots: settings, runtimes, executor, routes, JSON errors."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import redis
import requests
from flask import Flask, jsonify, request
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from linkpreview import PreviewService

from . import admin, health, logs, metrics_endpoint, previews, webhook
from .body import BodyErrors
from .bot import Bot
from .cli import bots_cli
from .config import ServerSettings, bot_settings, server_settings
from .dedupe import MemoryDedupe
from .dispatch import Dispatcher
from .executor import Executor, ThreadPoolExecutor
from .inbox import Inbox, MemoryInbox, SQLiteInbox, SQLiteJournal
from .inbox.redis_journal import redis_client
from .receiver import Receiver
from .runtime import BotRuntime
from .stats import CallStats, RedisCallStats
from .store import Store

logger = logging.getLogger("bots")


@dataclass
class Deployment:
    """What one app runs, kept in ``app.extensions["bots"]``."""

    settings: ServerSettings
    runtimes: dict[str, BotRuntime]
    dispatcher: Dispatcher
    inbox: Inbox
    stats: CallStats | RedisCallStats
    previews: PreviewService
    receiver: Receiver = field(init=False)
    started: bool = False

    def __post_init__(self) -> None:
        self.receiver = Receiver(self.runtimes, self.inbox.accept, self.settings.max_body_bytes,
                                 partial(previews.answer, self.previews), self.settings.max_json_depth)
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the inbox's workers, once: on the first request, or when gunicorn boots a worker."""
        with self._lock:
            if not self.started:
                self.inbox.start()
                atexit.register(self.inbox.shutdown)
                self.started = True


def make_app(bots: Iterable[Bot], env: Mapping[str, str], *, executor: Executor | None = None,
             session_factory: Callable[[], requests.Session] | None = None, name: str = "bots") -> Flask:
    """A Flask app serving ``bots`` with settings from ``env``; raises ConfigError on a bad setting."""
    settings = server_settings(env)
    logs.configure(env.get("LOG_LEVEL", "INFO"), settings.log_format)
    bots = list(bots)
    shared = _redis(settings)
    link_previews = previews.build(bots, settings, env, shared)
    store = None if settings.inbox == "celery" else Store(Path(settings.data_dir) / "bots.sqlite3")
    stats = RedisCallStats(shared) if shared is not None else CallStats(store)
    runtimes = {}
    for bot in bots:
        session = session_factory() if session_factory else None
        runtimes[bot.name] = BotRuntime.build(bot, bot_settings(bot.name, env), settings, stats, session)
    dispatcher = Dispatcher(runtimes, MemoryDedupe(settings.dedupe_ttl_seconds, settings.dedupe_max_keys))
    inbox = build_inbox(settings, store, dispatcher, runtimes, executor)
    deployment = Deployment(settings, runtimes, dispatcher, inbox, stats, link_previews)

    app = Flask(name, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["bots"] = deployment
    app.register_blueprint(webhook.blueprint())
    app.register_blueprint(admin.blueprint())
    app.cli.add_command(bots_cli)
    app.add_url_rule("/", view_func=_index)
    app.register_blueprint(health.blueprint())
    app.register_blueprint(metrics_endpoint.blueprint())
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)
    app.wsgi_app = StartOnFirstRequest(BodyErrors(_behind_proxies(app.wsgi_app, settings.proxy_hops)),
                                       deployment.start)
    return app


def _behind_proxies(wsgi_app: Callable, hops: int) -> Callable:
    """Trust ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from ``hops`` proxies in front (``PROXY_HOPS``, nginx:
    1), so the client's address, not the proxy's, is what refusals log; with 0 the headers are ignored."""
    return ProxyFix(wsgi_app, x_for=hops, x_proto=hops) if hops else wsgi_app


def _redis(settings: ServerSettings) -> redis.Redis | None:
    """The Redis client the preview cache and call stats share when ``REDIS_URL`` is set (the Celery inbox
    keeps a client of its own)."""
    return redis_client(settings.redis_url) if settings.redis_url else None


def build_inbox(settings: ServerSettings, store: Store | None, dispatcher: Dispatcher, runtimes: dict[str, BotRuntime],
                executor: Executor | None = None) -> Inbox:
    """The inbox ``settings`` ask for; a given ``executor`` (the test kit's) means the in-memory one."""
    if executor is not None or settings.inbox == "memory":
        return MemoryInbox(executor or ThreadPoolExecutor(max(1, settings.workers), settings.queue_limit), dispatcher)
    if settings.inbox == "celery":
        from .inbox.celery import CeleryInbox
        return CeleryInbox.from_settings(settings, dispatcher, runtimes)
    journal = SQLiteJournal(store, settings.dedupe_ttl_seconds, settings.inbox_lease_seconds)
    return SQLiteInbox(journal, dispatcher, runtimes, handler_threads=settings.workers,
                       sender_threads=settings.outbox_threads, max_attempts=settings.inbox_max_attempts,
                       send_attempts=settings.outbox_max_attempts, retry_base=settings.inbox_retry_base_ms / 1000,
                       strict=settings.inbox_order == "strict")


class StartOnFirstRequest:
    """WSGI middleware that calls ``start`` before the first request, so tools that only load the
    app (``flask bots deadletters``) never start handler threads."""

    def __init__(self, wsgi_app: Callable, start: Callable[[], None]) -> None:
        self.wsgi_app = wsgi_app
        self.start: Callable[[], None] | None = start

    def __call__(self, environ: dict, start_response: Callable):
        if self.start is not None:
            try:
                self.start()
                self.start = None
            except Exception:
                logger.exception("could not start the inbox's workers; trying again on the next request")
        return self.wsgi_app(environ, start_response)


def _index():
    deployment: Deployment = _deployment()
    base = request.host_url.rstrip("/")
    return jsonify({"bots": [
        {"name": name, "description": rt.bot.description, "webhook": f"{base}/webhooks/{name}",
         "handlers": len(rt.bot.listeners)}
        for name, rt in deployment.runtimes.items()
    ]})


def _deployment() -> Deployment:
    from flask import current_app
    return current_app.extensions["bots"]


def _http_error(error: HTTPException):
    messages = {
        404: "no such URL: webhooks are served at /webhooks/<bot> and /webhooks/<bot>/<topic>",
        405: f"method {request.method} is not allowed here: use GET for the handshake and POST for deliveries",
        413: f"body is larger than {request.max_content_length} bytes",
    }
    if isinstance(error, ClientDisconnected):
        messages[400] = "the body ended before the length its headers promised (Content-Length or chunked)"
    response = jsonify({"error": {"message": messages.get(error.code, error.description)}})
    response.status_code = error.code or 500
    if error.code == 405:
        response.headers["Allow"] = ", ".join(getattr(error, "valid_methods", None) or ())
    return response


def _server_error(error: Exception):
    logger.error("unexpected error on %s %s", request.method, request.path, exc_info=error)
    response = jsonify({"error": {"message": "internal error: the server log has the details"}})
    response.status_code = 500
    return response

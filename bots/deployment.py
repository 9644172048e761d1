"""The composition root: bots and settings in, everything one deployment runs out. No web framework here.

:func:`build` makes the settings, the Graph clients, the inbox (SQLite, Celery or in memory), the
call statistics and the preview service for a set of bots. The Flask extension
(:class:`bots.flask.BotServer`), the Celery worker (``worker.py``), the ``bots`` command and the test
kit all start from it, so they run one deployment whatever serves it.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import requests

from linkpreview import PreviewService

from . import logs, malloc, notices, previews
from .bot import Bot
from .config import BotSettings, ServerSettings, bot_settings, server_settings
from .dedupe import MemoryDedupe
from .dispatch import Dispatcher
from .errors import ConfigError
from .executor import Executor, ThreadPoolExecutor
from .inbox import Inbox, MemoryInbox, SQLiteInbox, SQLiteJournal
from .inbox.redis_journal import redis_client
from .receiver import Receiver
from .runtime import BotRuntime
from .stats import CallStats, RedisCallStats, Stats
from .store import Store

logger = logging.getLogger("bots")


@dataclass(frozen=True)
class Skipped:
    """A bot left out of a deployment because its settings are missing or malformed (``MISSING_SETTINGS=skip``)."""

    bot: Bot
    error: ConfigError


@dataclass
class Deployment:
    """What one process runs for its bots; a web app keeps it in ``app.extensions["bots"]``."""

    settings: ServerSettings
    runtimes: dict[str, BotRuntime]
    dispatcher: Dispatcher
    inbox: Inbox
    stats: Stats
    previews: PreviewService
    skipped: dict[str, Skipped] = field(default_factory=dict)
    receiver: Receiver = field(init=False)
    started: bool = False

    def __post_init__(self) -> None:
        self.receiver = Receiver(self.runtimes, self.inbox.accept, self.settings.max_body_bytes,
                                 partial(previews.answer, self.previews), self.settings.max_json_depth)
        self._lock = threading.Lock()

    @property
    def bots(self) -> list[Bot]:
        """Every bot this deployment was given, served or skipped: what ``bots manifest`` describes."""
        return [runtime.bot for runtime in self.runtimes.values()] + [skip.bot for skip in self.skipped.values()]

    def start(self, *, fork: bool = False, on_lost: Callable[[], None] = lambda: None) -> None:
        """Start the inbox's threads, once per process (on the first request, or when gunicorn boots a worker);
        they stop when the process exits. Before them, malloc is tuned for a threaded process (:mod:`bots.malloc`).

        ``fork`` (gunicorn's ``post_worker_init``, while the worker has no other thread): leave the SQLite inbox's
        threads to the machine's handler process, forking it if there is none, unless ``HANDLER_PROCESS=0``;
        ``on_lost`` is called when that process is gone."""
        with self._lock:
            if not self.started:
                malloc.tune()
                if fork and self.settings.handler_process and isinstance(self.inbox, SQLiteInbox) \
                        and self.inbox.handlers.count + self.inbox.senders.count > 0:
                    self.inbox.hand_off(on_lost, self.stats.flush)
                else:
                    self.inbox.start()
                atexit.register(self._exiting)
                self.started = True

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the inbox's threads, letting running work finish within ``timeout`` seconds, then write down
        the Graph calls counted since the last write."""
        with self._lock:
            if self.started:
                self.inbox.shutdown(timeout)
                atexit.unregister(self._exiting)
                self.started = False
        self.stats.flush()

    def _exiting(self) -> None:
        """At interpreter exit: the same as :meth:`shutdown` with its default wait."""
        self.inbox.shutdown()
        self.stats.flush()


def build(bots: Iterable[Bot], env: Mapping[str, str], *, executor: Executor | None = None,
          session_factory: Callable[[], requests.Session] | None = None) -> Deployment:
    """The deployment serving ``bots`` with settings from ``env``; raises ConfigError on a bad setting."""
    settings = server_settings(env)
    logs.configure(env.get("LOG_LEVEL", "INFO"), settings.log_format)
    bots = list(bots)
    shared = redis_client(settings.redis_url) if settings.redis_url else None
    link_previews = previews.build(bots, settings, env, shared)
    store = None if settings.inbox == "celery" else Store(Path(settings.data_dir) / "bots.sqlite3")
    if shared is not None:
        stats: Stats = RedisCallStats(shared)
    else:
        assert store is not None, "INBOX=celery needs REDIS_URL: server_settings refuses one without it"
        stats = CallStats(store)
    credentials, skipped = read_bot_settings(bots, env, settings.skips_missing)
    runtimes = {bot.name: BotRuntime.build(bot, credentials[bot.name], settings, stats,
                                           session_factory() if session_factory else None)
                for bot in bots if bot.name in credentials}
    dispatcher = Dispatcher(runtimes, MemoryDedupe(settings.dedupe_ttl_seconds, settings.dedupe_max_keys))
    inbox = build_inbox(settings, store, dispatcher, runtimes, executor)
    return Deployment(settings, runtimes, dispatcher, inbox, stats, link_previews, skipped)


def read_bot_settings(bots: Iterable[Bot], env: Mapping[str, str], skip: bool
                      ) -> tuple[dict[str, BotSettings], dict[str, Skipped]]:
    """Each bot's settings; with ``skip`` a bot whose settings are wrong is set aside and logged with its fix
    instead of stopping start-up (the first such error is raised otherwise)."""
    found: dict[str, BotSettings] = {}
    skipped: dict[str, Skipped] = {}
    for bot in bots:
        try:
            found[bot.name] = bot_settings(bot.name, env)
        except ConfigError as error:
            if not skip:
                raise
            skipped[bot.name] = Skipped(bot, error)
            logger.warning(notices.SKIPPED_BOT.format(bot=bot.name, error=error))
    return found, skipped


def build_inbox(settings: ServerSettings, store: Store | None, dispatcher: Dispatcher, runtimes: dict[str, BotRuntime],
                executor: Executor | None = None) -> Inbox:
    """The inbox ``settings`` ask for; a given ``executor`` (the test kit's) means the in-memory one."""
    if executor is not None or settings.inbox == "memory":
        return MemoryInbox(executor or ThreadPoolExecutor(max(1, settings.workers), settings.queue_limit), dispatcher)
    if settings.inbox == "celery":
        from .inbox.celery import CeleryInbox
        return CeleryInbox.from_settings(settings, dispatcher, runtimes)
    assert store is not None, "the SQLite inbox keeps its journal in the embedded store"
    journal = SQLiteJournal(store, settings.dedupe_ttl_seconds, settings.inbox_lease_seconds)
    return SQLiteInbox(journal, dispatcher, runtimes, handler_threads=settings.workers,
                       sender_threads=settings.outbox_threads, max_attempts=settings.inbox_max_attempts,
                       send_attempts=settings.outbox_max_attempts, retry_base=settings.inbox_retry_base_ms / 1000,
                       strict=settings.inbox_order == "strict")


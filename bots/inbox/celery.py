"""The scale-out inbox: events kept in Redis, run by Celery workers on any number of machines.

``accept`` appends a delivery's items to their conversations' lanes in Redis (one Lua script, with the
dedupe keys) before the webhook answers 200. Celery tasks are wake-up calls: a ``bots.handle`` task takes
batches of ready events (the due head of up to a batch's worth of lanes, one per conversation, each under
its lane's lock) and hands each batch to the :class:`~bots.inbox.runner.Runner`, the same engine the SQLite
inbox uses; ``bots.send`` tasks deliver the outbox through it the same way. A task keeps taking batches
while there is work, and briefly after, so a busy inbox is worked by a few long-running tasks, not one
task per event; it wakes one more when it leaves work behind, so a backlog spreads over the pool.

Tasks are only a wake-up call: the lanes in Redis are the truth. A task lost with its worker
(``task_acks_late`` and ``task_reject_on_worker_lost`` bring most back) is made good by the sweeper in
each worker, which makes ready again every lane whose head is due and whose lock has expired, and wakes
a worker when work waits and nobody looks for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

import redis
from celery import Celery, Task, bootsteps

from .. import metrics, notices
from ..config import ServerSettings
from ..dispatch import Dispatcher
from ..envelope import Item
from ..errors import ConfigError, WebhookError
from ..runtime import BotRuntime
from ..workers import BatchSize
from .heartbeat import Heartbeat
from .journal import Taken, TakenMessage, owner_name
from .redis_journal import KINDS, RedisJournal, redis_client
from .retries import RetryPolicy
from .runner import Runner
from .status import InboxStatus, waited

logger = logging.getLogger("bots")

#: An event or an outbox message a batch works on.
Job = TypeVar("Job", Taken, TakenMessage)


class Take(Protocol[Job]):
    """:meth:`RedisJournal.take` or :meth:`RedisJournal.take_messages`."""

    def __call__(self, owner: str, limit: int = 1, *, token: str = "", leaving: bool = False) -> list[Job]: ...


TASKS = {"event": "bots.handle", "message": "bots.send"}
LINGER = 0.05  # seconds a task goes on looking for work once it finds none, so a stream needs no new tasks
LOOK_EVERY = 0.005  # seconds between those looks
GATHER = 0.02  # seconds a task lets work gather after a batch smaller than it could take: fewer, larger batches
RUN_FOR = 2.0  # seconds a task works before it hands over, so the other kind of task gets the pool in turn


def celery_app(url: str, main: str = "bots") -> Celery:
    """The Celery app: Redis broker, late acks, a task given back when its worker dies, no result backend."""
    app = Celery(main, broker=url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue="bots",
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 600},
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
    )
    return app


class CeleryInbox:
    """Accepts deliveries into Redis lanes; Celery workers run them through the runner and deliver the outbox."""

    durable = True

    def __init__(self, journal: RedisJournal, celery: Celery, dispatcher: Dispatcher,
                 runtimes: Mapping[str, BotRuntime], *, max_attempts: int = 5, send_attempts: int = 5,
                 retry_base: float = 1.0, strict: bool = False, sweep_every: float = 5.0,
                 sender_threads: int = 4) -> None:
        self.journal = journal
        self.sender_threads = max(1, sender_threads)
        self.celery = celery
        self.runner = Runner(journal, dispatcher, runtimes, RetryPolicy(max_attempts, send_attempts, retry_base),
                             strict=strict)
        self.heartbeat = Heartbeat(journal.lease_seconds / 3)
        self.batches = {kind: BatchSize() for kind in KINDS}
        self.tasks = {kind: self._task(kind, name) for kind, name in TASKS.items()}
        self.sweeper = Sweeper(self, sweep_every)
        journal.wake = self.wake
        celery.steps["worker"].add(_sweeper_step(self.sweeper))

    @classmethod
    def from_settings(cls, settings: ServerSettings, dispatcher: Dispatcher,
                      runtimes: Mapping[str, BotRuntime]) -> CeleryInbox:
        url = settings.redis_url
        if url is None:  # server_settings refuses INBOX=celery without it
            raise ConfigError("INBOX", "is 'celery', which needs REDIS_URL (redis://host:6379/0)")
        journal = RedisJournal(redis_client(url), dedupe_ttl=settings.dedupe_ttl_seconds,
                               lease_seconds=settings.inbox_lease_seconds)
        return cls(journal, celery_app(url), dispatcher, runtimes,
                   max_attempts=settings.inbox_max_attempts, send_attempts=settings.outbox_max_attempts,
                   retry_base=settings.inbox_retry_base_ms / 1000, strict=settings.inbox_order == "strict",
                   sweep_every=min(5.0, max(0.5, settings.inbox_lease_seconds / 5)),
                   sender_threads=settings.outbox_threads)

    def accept(self, bot_name: str, items: Sequence[Item], body: bytes = b"") -> bool:
        """Append ``items`` to Redis (before the webhook answers 200); the append wakes a worker if none looks."""
        try:
            added = self.journal.append(bot_name, items)
        except redis.RedisError as error:
            logger.error("%s: %s (%s)", bot_name, notices.INBOX_UNAVAILABLE, type(error).__name__)
            raise WebhookError(503, notices.INBOX_UNAVAILABLE) from None
        metrics.repeats(bot_name, items, added)
        return True

    def wake(self, kind: str, token: str = "", delay: float = 0.0) -> None:
        """Enqueue a task to work ``kind`` (``delay`` seconds on); a lost one is made good by the sweeper, so
        failing here is logged only."""
        try:
            self.tasks[kind].apply_async((token,), countdown=delay or None)
        except Exception as error:
            logger.warning("could not enqueue a %s task (%s); the sweeper takes the work up", kind,
                           type(error).__name__)
            self._forget(kind, token)

    def start(self) -> None:
        """Nothing to start in a web process: the work runs in ``celery -A worker worker``."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop this process's sweeper, if it runs one."""
        self.sweeper.stop(timeout)

    @property
    def pending(self) -> int:
        """Events and messages waiting in Redis."""
        counts = self.journal.counts()
        return counts["events"] + counts["messages"]

    def status(self) -> InboxStatus:
        """The backlog and how long due work has waited in Redis; the threads are the Celery workers', not ours."""
        return InboxStatus(self.pending, waited(self.journal.waiting_since(), self.journal.now()))

    def dead_letters(self) -> list[dict[str, Any]]:
        """Parked events and messages, oldest first."""
        return self.journal.dead_letters()

    def replay(self, letter_id: str | None = None) -> int:
        """Put one dead letter (or all) back at the head of its lane; the journal wakes a worker for it."""
        return self.journal.replay(letter_id)

    def sweep(self) -> None:
        """Make lanes nobody holds ready again and wake workers for waiting work (the sweeper's round)."""
        for kind in KINDS:
            self.journal.sweep(kind)

    def drain(self, kind: str, token: str = "") -> None:
        """Work ``kind`` until none is left: events in this thread; messages in ``sender_threads`` threads at once
        (as many as ``OUTBOX_THREADS``), each taking its own, since a send mostly waits on Graph."""
        helpers = [threading.Thread(target=self._drain, args=(kind, "", False), name=f"bots-sender-{n}", daemon=True)
                   for n in range(self.sender_threads - 1 if kind == "message" else 0)]
        for helper in helpers:
            helper.start()
        self._drain(kind, token)
        for helper in helpers:
            helper.join()

    def _drain(self, kind: str, token: str, hand_over: bool = True) -> None:
        """Work batches of ``kind`` until none is left (and ``LINGER`` seconds more), or ``RUN_FOR`` is up, when
        a fresh task takes over (``hand_over``)."""
        if kind == "event":
            self._drain_with(self.journal.take, self.runner.handle, kind, token, hand_over)
        else:
            self._drain_with(self.journal.take_messages, self._deliver, kind, token, hand_over)

    def _drain_with(self, take: Take[Job], work: Callable[[Sequence[Job]], None], kind: str, token: str,
                    hand_over: bool) -> None:
        owner = owner_name()
        batch = self.batches[kind]
        started = time.monotonic()
        idle_since: float | None = None
        while (now := time.monotonic()) < started + RUN_FOR:
            leaving = idle_since is not None and now - idle_since >= LINGER
            jobs = take(owner, batch(), token=token, leaving=leaving)
            token = ""
            if jobs:
                idle_since = None
                self._work(jobs, work, batch)
                if len(jobs) < batch():
                    time.sleep(GATHER)
            elif leaving:
                return
            else:
                idle_since = idle_since or now
                time.sleep(LOOK_EVERY)
        take(owner, 0, leaving=True)
        if hand_over:
            self.wake(kind)

    def _work(self, jobs: Sequence[Job], work: Callable[[Sequence[Job]], None], batch: BatchSize) -> None:
        """Run one batch with its lanes' locks kept alive, and learn how long a job takes."""
        started = time.perf_counter()
        with self.heartbeat.keep(partial(self.journal.renew, jobs)):
            work(jobs)
        batch.ran(len(jobs), time.perf_counter() - started)

    def _deliver(self, messages: Sequence[TakenMessage]) -> None:
        """Deliver each message through the runner; forget those that reached Graph whole, in one call."""
        sent = [message for message in messages if self.runner.deliver(message)]
        self.journal.sent(sent)

    def _task(self, kind: str, name: str) -> Task:
        """The Celery task that works ``kind``: its one argument is the wake-up token it answers."""

        def work(token: str = "") -> None:
            self.drain(kind, token)
        return self.celery.task(name=name, acks_late=True, reject_on_worker_lost=True)(work)

    def _forget(self, kind: str, token: str) -> None:
        """Do not count a wake-up that was never enqueued as queued, so the next append wakes a worker."""
        if token:
            try:
                self.journal.forget_wake(kind, token)
            except redis.RedisError:
                pass


class Sweeper:
    """A thread in the worker's main process that makes idle lanes ready and wakes workers every ``every`` s."""

    def __init__(self, inbox: CeleryInbox, every: float) -> None:
        self.inbox = inbox
        self.every = every
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread: it sweeps now and every ``every`` seconds."""
        if self._thread is None:
            self._stopped.clear()
            self._thread = threading.Thread(target=self._loop, name="bots-sweeper", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, waiting up to ``timeout`` seconds for its round to end."""
        if self._thread is not None:
            self._stopped.set()
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        """Forget the wake-ups of workers that may be gone, then sweep until stopped."""
        try:
            self.inbox.journal.forget_wakes()
        except redis.RedisError as error:
            logger.warning("sweeper: could not reach Redis (%s); trying again shortly", type(error).__name__)
        while True:
            try:
                self.inbox.sweep()
            except Exception as error:
                logger.warning("sweeper: could not read the lanes (%s); trying again shortly", type(error).__name__)
            if self._stopped.wait(self.every):
                return


def _sweeper_step(sweeper: Sweeper) -> type[bootsteps.StartStopStep]:
    """A worker bootstep that runs ``sweeper`` once the pool is up, so no child process inherits its thread."""

    class SweeperStep(bootsteps.StartStopStep):  # type: ignore[misc]  # celery ships no types
        requires = ("celery.worker.components:Pool",)
        label = "bots sweeper"

        def start(self, worker: object) -> None:
            sweeper.start()

        def stop(self, worker: object) -> None:
            sweeper.stop(2.0)

    return SweeperStep

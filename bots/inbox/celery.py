"""The scale-out inbox: events kept in Redis, run by Celery workers on any number of machines.

``accept`` appends a delivery's items to their conversations' lanes in Redis (one Lua script, with
the dedupe keys) before the webhook answers 200, then enqueues one ``bots.handle`` task per lane.
A task works its lane under the lane's lock: it runs the head event with :meth:`Dispatcher.run`,
commits the outbox messages, the state and the event's removal at once, and goes on to the next
event, so one conversation runs in order while other lanes run on other workers. ``bots.send``
tasks deliver a conversation's outbox the same way through the Graph client, with an
``X-Idempotency-Key``. Failures are retried with backoff and then parked as dead letters.

Tasks are only a wake-up call: the lanes in Redis are the truth. A task lost with its worker
(``task_acks_late`` and ``task_reject_on_worker_lost`` bring most back) is made good by the
sweeper in each worker, which re-enqueues every lane whose head is due and whose lock has expired.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import redis
from celery import Celery, Task, bootsteps

from .. import notices
from ..config import ServerSettings
from ..dispatch import Dispatcher
from ..envelope import Item
from ..errors import WebhookError
from ..outbox import Outbox
from ..router import Status
from ..runtime import BotRuntime
from .heartbeat import Heartbeat
from .journal import owner_name
from .redis_store import Claim, RedisJournal, redis_client
from .retries import Failure, RetryPolicy

logger = logging.getLogger("bots")

TASKS = {"event": "bots.handle", "message": "bots.send"}
BATCH = 50  # items one task runs before it lets its lane go and enqueues it again, so lanes take turns


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
    """Accepts deliveries into Redis lanes; Celery workers run them with the dispatcher and deliver the outbox."""

    durable = True

    def __init__(self, journal: RedisJournal, celery: Celery, dispatcher: Dispatcher,
                 runtimes: Mapping[str, BotRuntime], *, max_attempts: int = 5, send_attempts: int = 5,
                 retry_base: float = 1.0, sweep_every: float = 5.0) -> None:
        self.journal = journal
        self.celery = celery
        self.dispatcher = dispatcher
        self.runtimes = runtimes
        self.retries = RetryPolicy(max_attempts, send_attempts, retry_base)
        self.sweeper = Sweeper(self, sweep_every)
        self.heartbeat = Heartbeat(journal.lease_ms / 1000 / 3)
        self.tasks = {kind: self._task(kind, name) for kind, name in TASKS.items()}
        celery.steps["worker"].add(_sweeper_step(self.sweeper))

    @classmethod
    def from_settings(cls, settings: ServerSettings, dispatcher: Dispatcher,
                      runtimes: Mapping[str, BotRuntime]) -> CeleryInbox:
        journal = RedisJournal(redis_client(settings.redis_url), dedupe_ttl=settings.dedupe_ttl_seconds,
                               lease_seconds=settings.inbox_lease_seconds)
        return cls(journal, celery_app(settings.redis_url), dispatcher, runtimes,
                   max_attempts=settings.inbox_max_attempts, send_attempts=settings.outbox_max_attempts,
                   retry_base=settings.inbox_retry_base_ms / 1000,
                   sweep_every=min(5.0, max(0.5, settings.inbox_lease_seconds / 5)))

    def accept(self, bot_name: str, items: Sequence[Item]) -> bool:
        """Append ``items`` to Redis (before the webhook answers 200) and wake a worker for each lane."""
        try:
            lanes = self.journal.append(bot_name, items)
        except redis.RedisError as error:
            logger.error("%s: %s (%s)", bot_name, notices.INBOX_UNAVAILABLE, type(error).__name__)
            raise WebhookError(503, notices.INBOX_UNAVAILABLE) from None
        for lane in lanes:
            self.enqueue("event", lane)
        return True

    def enqueue(self, kind: str, lane: str, delay: float = 0.0) -> None:
        """Ask a worker to work ``lane``; a lost request is made good by the sweeper, so failing here is logged only."""
        try:
            self.tasks[kind].apply_async((lane,), countdown=delay or None)
        except Exception as error:
            logger.warning("could not enqueue a %s task (%s); the sweeper takes the lane up", kind,
                           type(error).__name__)

    def start(self) -> None:
        """Nothing to start in a web process: the work runs in ``celery -A worker worker``."""

    def shutdown(self, timeout: float = 10.0) -> None:
        self.sweeper.stop(timeout)

    @property
    def pending(self) -> int:
        counts = self.journal.counts()
        return counts["events"] + counts["messages"]

    def dead_letters(self) -> list[dict]:
        return self.journal.dead_letters()

    def replay(self, letter_id: str | None = None) -> int:
        """Put one dead letter (or all) back at the head of its lane and wake a worker for it."""
        replayed = self.journal.replay(letter_id)
        for kind, lane in set(replayed):
            self.enqueue(kind, lane)
        return len(replayed)

    def sweep(self) -> int:
        """Enqueue every lane with due work that nobody holds; returns how many."""
        count = 0
        for kind in TASKS:
            for lane in self.journal.idle_lanes(kind):
                self.enqueue(kind, lane)
                count += 1
        return count

    def _task(self, kind: str, name: str) -> Task:
        """The Celery task that works a lane of ``kind``: its one argument is the lane's name."""
        run = self._handle if kind == "event" else self._deliver

        def work_lane(lane: str) -> None:
            self._work(kind, lane, run)
        return self.celery.task(name=name, acks_late=True, reject_on_worker_lost=True)(work_lane)

    def _work(self, kind: str, lane: str, run: Callable[[str, str, Claim], None]) -> None:
        """Run up to ``BATCH`` items of ``lane`` in order under its lock, then let it go."""
        owner = owner_name()
        with self.heartbeat.keep(partial(self.journal.renew, kind, lane, owner)):
            for _ in range(BATCH):
                claim = self.journal.take(kind, lane, owner)
                if claim.outcome != "take":
                    return
                run(lane, owner, claim)
        self.journal.release(kind, lane, owner)
        self.enqueue(kind, lane)

    def _handle(self, lane: str, owner: str, claim: Claim) -> None:
        """Run one event; commit its effects and state, or retry it later, or park it."""
        if claim.bot not in self.runtimes:
            self.journal.bury("event", lane, owner, claim, f"no bot named {claim.bot!r} is served here")
            return
        state = self.journal.load_state(claim.bot, claim.conversation)
        outbox = Outbox()
        outcome = self.dispatcher.run(claim.bot, claim.item, state=state, outbox=outbox)
        if outcome.status is Status.FAILED:
            self._failed("event", lane, owner, claim, outcome.error)
            return
        try:
            finished = self.journal.finish("event", lane, owner, claim, outbox.effects, state)
        except TypeError as error:
            self._failed("event", lane, owner, claim, error)
            return
        if not finished:
            logger.warning("%s: event %s was taken over by another worker; this run's effects are dropped",
                           claim.bot, claim.id)
        elif outbox.effects:
            self.enqueue("message", lane)

    def _deliver(self, lane: str, owner: str, claim: Claim) -> None:
        """Send one outbox message; on failure retry later or park it with Graph's reason."""
        runtime = self.runtimes.get(claim.bot)
        if runtime is None:
            self.journal.bury("message", lane, owner, claim, f"no bot named {claim.bot!r} is served here")
            return
        failure = self.retries.send(runtime, claim.effect, claim.key, claim.attempts)
        if failure is None:
            self.journal.finish("message", lane, owner, claim)
        else:
            self._settle("message", lane, owner, claim, claim.effect.describe(), failure)

    def _failed(self, kind: str, lane: str, owner: str, claim: Claim, error: BaseException | None) -> None:
        self._settle(kind, lane, owner, claim, f"event {claim.id}", self.retries.handler_failed(claim.attempts, error))

    def _settle(self, kind: str, lane: str, owner: str, claim: Claim, what: str, failure: Failure) -> None:
        """Hold the lane until the item is due again and enqueue it for then, or park the item."""
        if failure.retry_in is not None:
            if self.journal.retry(kind, lane, owner, claim, failure.reason, failure.retry_in):
                self.enqueue(kind, lane, failure.retry_in)
            return
        logger.error("%s: %s parked as a dead letter after %d attempts: %s", claim.bot, what, claim.attempts,
                     failure.reason)
        self.journal.bury(kind, lane, owner, claim, failure.reason)


class Sweeper:
    """A thread in the worker's main process that re-enqueues idle lanes every ``every`` seconds."""

    def __init__(self, inbox: CeleryInbox, every: float) -> None:
        self.inbox = inbox
        self.every = every
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stopped.clear()
            self._thread = threading.Thread(target=self._loop, name="bots-sweeper", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._stopped.set()
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopped.wait(self.every):
            try:
                self.inbox.sweep()
            except Exception as error:
                logger.warning("sweeper: could not read the lanes (%s); trying again shortly", type(error).__name__)


def _sweeper_step(sweeper: Sweeper) -> type[bootsteps.StartStopStep]:
    """A worker bootstep that runs ``sweeper`` once the pool is up, so no child process inherits its thread."""

    class SweeperStep(bootsteps.StartStopStep):
        requires = ("celery.worker.components:Pool",)
        label = "bots sweeper"

        def start(self, worker) -> None:
            sweeper.start()

        def stop(self, worker) -> None:
            sweeper.stop(2.0)

    return SweeperStep

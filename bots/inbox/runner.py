"""The inbox engine: run taken events through their handlers and settle them, deliver outbox messages.

One algorithm over any :class:`~bots.inbox.journal.Journal` (SQLite threads or Celery tasks):

- **handle** a batch of events: read each stored item, load its conversation's state, run it with the
  dispatcher and an outbox, then finish every successful one in one journal call (effects, state and
  completion together). A handler that raises is settled on its own: retried with backoff out of its
  conversation's line (in line under ``INBOX_ORDER=strict``), then parked as a dead letter.
- **deliver** a message: the effects of one handler run, in order, each resolved against the answers of
  the earlier ones (a comment on the post the handler made), each with its own idempotency key.

Every stage is isolated: an item that cannot be read, typed, run, saved or sent becomes a retry or a
dead letter with the reason, and the rest of the batch goes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence

from .. import metrics
from ..dispatch import Dispatcher
from ..outbox import Effect, Outbox, resolve
from ..router import Status
from ..runtime import BotRuntime
from ..state import State, dumps
from .journal import Finished, Journal, Progress, Taken, TakenMessage, read_item, reason
from .retries import Failure, RetryPolicy

logger = logging.getLogger("bots")

#: What :meth:`Runner._run` hands on for an event to finish: the record, its kind and its outcome, for the metrics.
Ran = tuple[Finished, str, str]


class Runner:
    """Runs events and delivers messages for the bots one deployment serves, over ``journal``."""

    def __init__(self, journal: Journal, dispatcher: Dispatcher, runtimes: Mapping[str, BotRuntime],
                 retries: RetryPolicy, *, strict: bool = False,
                 on_effects: Callable[[int], None] | None = None) -> None:
        self.journal = journal
        self.dispatcher = dispatcher
        self.runtimes = runtimes
        self.retries = retries
        self.strict = strict
        self.on_effects = on_effects

    def handle(self, jobs: Sequence[Taken]) -> None:
        """Run every event of a batch, then finish the successful ones together."""
        finished: list[Ran] = []
        try:
            states = self.journal.load_states(jobs)
        except Exception as error:
            logger.error("could not read the conversations' state (%s); the events are tried again", error)
            for job in jobs:
                self._failed(job, error)
            return
        for job, state in zip(jobs, states, strict=True):
            try:
                ran = self._run(job, state)
            except Exception as error:
                logger.error("%s: event %s failed outside its handler: %s", job.bot, job.id, type(error).__name__,
                             exc_info=error)
                self._failed(job, error)
                continue
            if ran is not None:
                finished.append(ran)
        self._finish(finished)

    def deliver(self, message: TakenMessage) -> bool:
        """Send a message's effects that have not gone out yet, in order; True when all of them reached Graph."""
        runtime = self.runtimes.get(message.bot)
        if runtime is None:
            self._bury(message, f"no bot named {message.bot!r} is served here")
            return False
        try:
            effects = [Effect.from_dict(effect) for effect in json.loads(message.body)]
        except (ValueError, TypeError, KeyError) as error:
            self._bury(message, f"could not read the stored message: {reason(error)}")
            return False
        results = list(message.results)
        for index in range(message.done, len(effects)):
            try:
                effect = resolve(effects[index], results)
            except ValueError as error:
                self._bury(message, reason(error))
                return False
            failure, answer = self.retries.send(runtime, effect, f"{message.key}:{index}", message.attempts)
            metrics.outbox_send(message.bot, _send_outcome(failure))
            if failure is not None:
                self._settle(message, f"{effect.describe()} (effect {index + 1} of {len(effects)})", failure)
                return False
            results.append(answer)
            if index + 1 < len(effects) and not self.journal.progress(message, Progress(index + 1, results)):
                logger.warning("%s: message %s was taken over by another sender", message.bot, message.id)
                return False
        return True

    def _run(self, job: Taken, state: State) -> Ran | None:
        """One event through its handler: what to finish it with, or None when it was settled otherwise."""
        if job.bot not in self.runtimes:
            self._bury(job, f"no bot named {job.bot!r} is served here")
            return None
        try:
            item = job.item or read_item(job.body)
        except (ValueError, TypeError) as error:
            self._bury(job, f"could not read the stored event: {reason(error)}")
            return None
        kind = metrics.kind_of(item)
        outbox = Outbox()
        outcome = self.dispatcher.run(job.bot, item, state=state, outbox=outbox, attempt=job.attempts,
                                      last_attempt=self.retries.last_attempt(job.attempts), kind=kind)
        if outcome.status is Status.FAILED:
            self._failed(job, outcome.error, kind, outbox.effects)
            return None
        if outcome.status is Status.INVALID:
            self._bury(job, f"the schema refuses this item: {reason(outcome.error)}", kind)
            return None
        return Finished(job, list(outbox.effects), _changed(state)), kind, outcome.status.value

    def _finish(self, ran: list[Ran]) -> None:
        """Finish the batch in one call; when that fails, one by one, so only the event that cannot be
        saved is retried."""
        if not ran:
            return
        finished = [done for done, _, _ in ran]
        try:
            held: list[bool | None] = list(self.journal.finish(finished))
        except Exception:
            held = [self._finish_one(done, kind) for done, kind, _ in ran]
        for (done, kind, outcome), kept in zip(ran, held, strict=True):
            if kept is False:
                logger.warning("%s: event %s was taken over by another worker; this run's effects are dropped",
                               done.job.bot, done.job.id)
                metrics.event(done.job.bot, kind, "lost")
            elif kept:
                metrics.event(done.job.bot, kind, outcome)
        effects = sum(len(done.effects) > 0 for done, kept in zip(finished, held, strict=True) if kept is True)
        if effects and self.on_effects is not None:
            self.on_effects(effects)

    def _finish_one(self, done: Finished, kind: str) -> bool | None:
        """Finish one event: whether its lease was still held, or None when it could not be saved and is retried."""
        try:
            return self.journal.finish([done])[0]
        except Exception as error:
            self._failed(done.job, error, kind)
            return None

    def _failed(self, job: Taken, error: BaseException | None, kind: str = metrics.UNKNOWN,
                effects: Sequence[Effect] = ()) -> None:
        self._settle(job, f"event {job.id}", self.retries.handler_failed(job.attempts, error), kind, effects)

    def _settle(self, job: Taken | TakenMessage, what: str, failure: Failure, kind: str = metrics.UNKNOWN,
                effects: Sequence[Effect] = ()) -> None:
        """Give failed work back to be tried again later, or park it as a dead letter; ``effects`` (what an
        event's error handlers sent) go out only with the last attempt, so a person hears of a failure once."""
        if failure.retry_in is None:
            logger.error("%s: %s parked as a dead letter after %d attempts: %s", job.bot, what, job.attempts,
                         failure.reason)
            self._bury(job, failure.reason, kind, effects)
            return
        _count(job, kind, "retried")
        try:
            self.journal.retry(job, failure.reason, failure.retry_in, in_line=self.strict)
        except Exception as error:
            logger.error("%s: could not schedule a retry of %s (%s); its lease runs out and it is taken again",
                         job.bot, what, type(error).__name__)

    def _bury(self, job: Taken | TakenMessage, why: str, kind: str = metrics.UNKNOWN,
              effects: Sequence[Effect] = ()) -> None:
        try:
            self.journal.bury(job, why, effects)
        except Exception as error:
            logger.error("%s: could not park %s (%s); its lease runs out and it is taken again", job.bot, job.id,
                         type(error).__name__)
            return
        _count(job, kind, "dead")
        if effects and self.on_effects is not None:
            self.on_effects(1)


def _count(job: Taken | TakenMessage, kind: str, outcome: str) -> None:
    """Count failed work given back (``retried``) or parked (``dead``): an event also among the events."""
    what = "message" if isinstance(job, TakenMessage) else "event"
    if what == "event":
        metrics.event(job.bot, kind, outcome)
    (metrics.retried if outcome == "retried" else metrics.dead_letter)(job.bot, what)


def _send_outcome(failure: Failure | None) -> str:
    """What became of one outbox effect: sent, given back to be retried, or parked."""
    if failure is None:
        return "sent"
    return "retried" if failure.retry_in is not None else "dead"


def _changed(state: State) -> str | None:
    """The state to save, or None when the handler left it as it was; TypeError for a value JSON cannot hold."""
    return dumps(state) if state.changed else None

"""The retry policy every durable inbox shares: when failed work is tried again, and when it is parked.

A handler that raises is tried again with backoff up to ``max_attempts`` times; an outbox message
Graph refuses for a passing reason (5xx, no answer, rate limits) up to ``send_attempts`` times,
and one it refuses for good (bad token, bad recipient) is parked at once with Graph's reason.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ..errors import GraphError
from ..outbox import Effect
from ..runtime import BotRuntime
from .journal import reason


def backoff(attempt: int, base: float, cap: float = 300.0) -> float:
    """Seconds before try ``attempt + 1``: exponential from ``base``, capped, with jitter."""
    delay: float = min(cap, base * 2 ** (attempt - 1))
    return delay * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Failure:
    """What to record of failed work, and when to try it again (``retry_in`` None: park it)."""

    reason: str
    retry_in: float | None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    send_attempts: int = 5
    base: float = 1.0

    def last_attempt(self, attempts: int) -> bool:
        """Whether a handler run that is attempt ``attempts`` of its event is the last: its failure parks it."""
        return attempts >= self.max_attempts

    def handler_failed(self, attempts: int, error: BaseException | None) -> Failure:
        """The verdict on a handler run that raised (or whose result could not be saved)."""
        return Failure(reason(error), None if self.last_attempt(attempts) else backoff(attempts, self.base))

    def send(self, runtime: BotRuntime, effect: Effect, key: str,
             attempts: int) -> tuple[Failure | None, dict[str, Any]]:
        """Send one effect with its idempotency key: no failure and Graph's answer, or why it failed."""
        try:
            answer = runtime.client.request(effect.method, effect.path, json=effect.body, idempotency_key=key)
        except GraphError as error:
            again = error.retryable and attempts < self.send_attempts
            return Failure(reason(f"Graph API: {error}"), backoff(attempts, self.base) if again else None), {}
        return None, answer if isinstance(answer, dict) else {}

"""The probes an orchestrator or load balancer polls: ``/healthz`` (liveness) and ``/readyz`` (readiness).

Liveness answers 503 when restarting this process would help: its inbox cannot be read, or threads
it runs handlers or sends on have died. Readiness adds the backlog: 503 when due work has waited
longer than ``READY_MAX_AGE_SECONDS``, so a stuck inbox, whatever stalls it, takes the process out of
rotation and pages someone, while a short burst does not. Each problem is named in the JSON body.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify

from .. import notices
from ..inbox.status import InboxStatus

logger = logging.getLogger("bots")


def blueprint() -> Blueprint:
    """The two probe routes; the deployment is found in ``app.extensions["bots"]``."""
    bp = Blueprint("health", __name__)
    bp.add_url_rule("/healthz", view_func=_liveness)
    bp.add_url_rule("/readyz", view_func=_readiness)
    return bp


def problems(status: InboxStatus, max_age: float | None) -> list[dict[str, str]]:
    """What is wrong with an inbox reading: dead threads, and (when ``max_age`` is given) due work older than it."""
    found = [{"check": "threads", "message": notices.THREADS_DIED.format(count=count, kind=kind)}
             for kind, count in sorted(status.dead_threads().items())]
    if max_age is not None and status.waited is not None and status.waited > max_age:
        found.append({"check": "backlog", "message": notices.INBOX_STUCK.format(waited=status.waited,
                                                                                 limit=max_age)})
    return found


def _liveness() -> tuple[Response, int]:
    return _answer(None)


def _readiness() -> tuple[Response, int]:
    return _answer(float(current_app.extensions["bots"].settings.ready_max_age_seconds))


def _answer(max_age: float | None) -> tuple[Response, int]:
    """200 with the reading, or 503 naming each problem (``error.message`` joins them for simple clients)."""
    deployment = current_app.extensions["bots"]
    try:
        status: InboxStatus = deployment.inbox.status()
    except (redis.RedisError, sqlite3.Error, OSError) as error:
        logger.error("health: %s (%s)", notices.INBOX_UNREACHABLE, type(error).__name__)
        return _unhealthy([{"check": "store", "message": notices.INBOX_UNREACHABLE}])
    found = problems(status, max_age)
    if found:
        logger.warning("health: %s", "; ".join(problem["message"] for problem in found))
        return _unhealthy(found)
    body: dict[str, Any] = {"ok": True, "bots": sorted(deployment.runtimes), "pending": status.pending,
                            "waited_seconds": None if status.waited is None else round(status.waited, 3),
                            "threads": {kind: {"alive": alive, "started": started}
                                        for kind, (alive, started) in status.threads.items()}}
    return jsonify(body), 200


def _unhealthy(found: list[dict[str, str]]) -> tuple[Response, int]:
    message = "; ".join(problem["message"] for problem in found)
    return jsonify({"ok": False, "error": {"message": message, "problems": found}}), 503

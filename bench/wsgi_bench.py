"""The counting bench bot (``bench/counting_bot.py``) for gunicorn, built as production builds its app:
``app.create_app`` with ``HANDLERS=bench.bench_bots`` and every setting from the environment, which
``bench/throughput.py`` sets for each form it serves (``INBOX``, ``HANDLER_THREADS``, ``OUTBOX_THREADS``,
``DATA_DIR``, ``REDIS_URL``, ``BENCH_RUNS_DIR``, the bot's credentials); ``.env`` is not read.

- ``bench.wsgi_bench:app``: the app as the settings make it (``INBOX=sqlite|memory|celery``);
- ``bench.wsgi_bench:discarding``: the in-memory inbox with an executor that takes every job and runs
  none, for the request path alone of ``INBOX=memory`` (that inbox keeps at least one handler
  thread whatever ``HANDLER_THREADS`` says).

Apps are built on first use, so importing :class:`Discard` builds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask

from app import create_app

PACKAGE = "bench.bench_bots"


class Discard:
    """An executor (``submit``/``shutdown``) that accepts every batch of jobs and runs none of them."""

    def __init__(self) -> None:
        self.jobs = 0

    def submit(self, jobs: Sequence) -> bool:
        self.jobs += len(jobs)
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        return None


def __getattr__(name: str) -> Flask:
    """Build ``app`` or ``discarding`` when gunicorn first asks for it."""
    if name == "app":
        application = create_app({"HANDLERS": PACKAGE, "DOTENV": False})
    elif name == "discarding":
        application = create_app({"HANDLERS": PACKAGE, "DOTENV": False, "EXECUTOR": Discard()})
    else:
        raise AttributeError(name)
    globals()[name] = application
    return application

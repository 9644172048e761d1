"""The bench bot: a handler that does nothing but record that it ran, and for which message.

``make bench`` serves this bot (``counter``, at ``/webhooks/counter``) so that a measurement of the
whole path (request, inbox, dispatch, handler, done) costs the framework and almost nothing else,
and so that the harness can check that the handler ran exactly once per delivery it sent.

Where the record goes:

- in process (``bench/inprocess.py``, ``tests/test_bench.py``): :data:`runs`, a list the harness
  reads, with an event that is set when as many runs as expected have been recorded, so waiting
  for the last handler costs no polling;
- in other processes (gunicorn workers, Celery pool processes): when ``BENCH_RUNS_DIR`` is set, each
  process appends ``<mid> <time.time()>\\n`` to its own file ``<BENCH_RUNS_DIR>/<pid>.runs``, opened once
  with ``O_APPEND`` (one ``write`` per run); ``bench/accounting.py`` reads them, and ``bench/soak.py``
  times each delivery from its send to its handler run with the second field.

The bot is found by ``create_app({"HANDLERS": "bench.bench_bots"})`` and by ``celery -A worker`` with
``HANDLERS=bench.bench_bots`` (``bench/bench_bots/counter.py`` re-exports it).
"""

from __future__ import annotations

import os
import threading
import time

from bots import Bot

NAME = "counter"
bot = Bot(NAME, description="make bench: records each handler run, nothing else")


class Runs:
    """Handler runs recorded in this process: the mids in the order their handlers ran."""

    def __init__(self) -> None:
        self.mids: list[str] = []
        self.target: int | None = None
        self.done = threading.Event()
        #: Test hook: a handler run for one of these mids is not recorded (as if it never ran).
        self.drop: set[str] = set()
        self._fd: int | None = None
        self._folder = os.environ.get("BENCH_RUNS_DIR") or None
        os.register_at_fork(after_in_child=self._forked)

    def in_memory(self) -> None:
        """Record to :attr:`mids` in this process whatever ``BENCH_RUNS_DIR`` says (the in-process harness)."""
        self._folder = None

    def expect(self, count: int) -> None:
        """Forget earlier runs; :attr:`done` is set once ``count`` runs are recorded."""
        self.mids = []
        self.done.clear()
        self.target = count
        if count <= 0:
            self.done.set()

    def record(self, mid: str | None) -> None:
        """One handler run for ``mid``: to this process's file under ``BENCH_RUNS_DIR``, else to :attr:`mids`."""
        mid = mid or "?"
        if mid in self.drop:
            return
        if self._folder is not None:
            if self._fd is None:
                self._fd = os.open(os.path.join(self._folder, f"{os.getpid()}.runs"),
                                   os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(self._fd, f"{mid} {time.time():.6f}\n".encode())
            return
        self.mids.append(mid)
        if self.target is not None and len(self.mids) >= self.target:
            self.done.set()

    def _forked(self) -> None:
        """A forked child (gunicorn worker, Celery pool process) writes a file of its own."""
        self._fd = None
        self._folder = os.environ.get("BENCH_RUNS_DIR") or None


runs = Runs()


@bot.on_message()
def ran(event, ctx):
    """Record the run; nothing else (no reply, no state), so the figure is the framework's."""
    runs.record(event.mid)

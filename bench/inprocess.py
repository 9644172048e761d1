"""In process: CPU per handled event of the whole path, against the bare Flask floor's CPU per request.

Every app is called the same way, as a WSGI application with prepared environs (no test client,
no sockets), with distinct signed deliveries (fresh message ids, 1,000 senders in turn):

- the floor (``bench/floor.py``) and the hand-written HMAC receiver (``bench/peer_hmac.py``);
- the counting bench bot (``bench/counting_bot.py``) served by ``bots.flask.make_app`` (deliveries answered in
  front of Flask, ``bots/wsgi.py``, as deployed; once more through Flask, ``SQLite, via Flask``), with the
  durable SQLite inbox (``INBOX=sqlite``) and the in-memory one (``INBOX=memory``), each in two forms:
  - *request path*: ``HANDLER_THREADS=0 OUTBOX_THREADS=0``, so only what happens before the 200 is
    timed (for ``memory``, whose inbox keeps one handler thread regardless, an executor that takes
    every job and runs none);
  - *whole path*: handler and sender threads running; the round ends when the handler has run for
    every delivery and ``/healthz`` says nothing is pending.

A round's figure is ``time.process_time()`` (the CPU of every thread of this process: the calling
one, handler, sender, heartbeat threads) over the round, per delivery. Each round of an app comes right
after a round of the floor, and the figure read against a target is the median over the rounds of the
ratio within each pair: this machine's CPU speed drifts by up to 2x over seconds with no steal shown
(a fixed loop's 1 s means ranged 8.8-18.1 ms in one minute), and two rounds a moment apart share most
of that drift where medians taken minutes apart do not. The whole path also checks, per round, that
the handler ran exactly once for each delivery (``bench/accounting.py``), and gives up with a clear
error after a time-out instead of waiting for ever on an engine that lost an event.

Run alone: ``.venv/bin/python -m bench.inprocess [--rounds 7] [--count 1500]``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from werkzeug.test import EnvironBuilder

from bench import accounting, floor, payloads, peer_hmac
from bench.accounting import Tally
from bench.counting_bot import bot, runs
from bench.payloads import COUNTER_CREDENTIALS, DEAD_GRAPH_URL, Signed
from bench.wsgi_bench import Discard
from bots.flask import make_app

#: Targets for the whole path, CPU per handled event over the floor's CPU per request.
TARGETS = {"sqlite": 1.6, "memory": 1.3}
INBOXES = {"sqlite": "SQLite", "memory": "memory"}
FLOOR, PEER = "floor", "HMAC receiver"
#: The SQLite whole path with deliveries through Flask's request handling (``fast_deliveries=False``): no target,
#: it shows what answering deliveries in front of Flask (``bots/wsgi.py``) saves.
THROUGH_FLASK = "SQLite, via Flask"


@dataclass(frozen=True)
class Served:
    """One app under test: its name, whether its handlers run, and which inbox."""

    name: str
    app: Flask
    whole: bool = False
    inbox: str | None = None


@dataclass(frozen=True)
class Round:
    """One timed round of one app: ``count`` deliveries, the CPU and wall time it took, and for the
    whole path the handler-run tally; ``problem`` says what did not finish, if anything did not."""

    count: int
    cpu: float
    wall: float
    tally: Tally | None = None
    problem: str | None = None

    @property
    def cpu_us(self) -> float:
        return self.cpu * 1e6 / self.count

    @property
    def wall_us(self) -> float:
        return self.wall * 1e6 / self.count


def _cpu_us(one: Round) -> float:
    return one.cpu_us


@dataclass
class Measured:
    """Every round of one app; figures are medians."""

    served: Served
    rounds: list[Round] = field(default_factory=list)
    #: (the floor's round, this app's round just after it): what the figure is read from; none for the floor.
    pairs: list[tuple[Round, Round]] = field(default_factory=list)

    @property
    def valid(self) -> list[Round]:
        return [one for one in self.rounds if one.problem is None]

    @property
    def ratios(self) -> list[float]:
        """CPU per event over the floor's in the round just before, for each completed pair, lowest first."""
        return accounting.pair_ratios(self.pairs, _cpu_us)

    @property
    def ratio(self) -> float:
        """The median of :attr:`ratios` (1 for the floor itself)."""
        return accounting.paired_median(self.pairs, _cpu_us)

    @property
    def cpu_us(self) -> float:
        return statistics.median(one.cpu_us for one in self.valid) if self.valid else float("nan")

    @property
    def wall_us(self) -> float:
        return statistics.median(one.wall_us for one in self.valid) if self.valid else float("nan")

    @property
    def spread(self) -> float:
        """(max - min) / median of the CPU per event over the valid rounds."""
        values = [one.cpu_us for one in self.valid]
        return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else 0.0

    @property
    def problems(self) -> list[str]:
        return [one.problem for one in self.rounds if one.problem]


@dataclass
class Result:
    measured: dict[str, Measured]
    count: int

    @property
    def floor_us(self) -> float:
        return self.measured[FLOOR].cpu_us

    @property
    def peer_us(self) -> float:
        return self.measured[PEER].cpu_us


class NotFinished(RuntimeError):
    """A benchmark round that could not be completed: names the app and what did not finish."""


def bot_env(inbox: str, data_dir: Path, *, whole: bool) -> dict[str, str]:
    """Settings of the counting bot's app: credentials, inbox, a Graph nobody answers, quiet logs;
    without ``whole``, no handler or sender threads."""
    env = {**COUNTER_CREDENTIALS, "INBOX": inbox, "DATA_DIR": str(data_dir), "GRAPH_API_URL": DEAD_GRAPH_URL,
           "GRAPH_RETRY_ATTEMPTS": "1", "LOG_LEVEL": "WARNING"}
    if not whole:
        env |= {"HANDLER_THREADS": "0", "OUTBOX_THREADS": "0"}
    return env


def real_app(inbox: str, data_dir: Path, *, whole: bool, fast: bool = True) -> Flask:
    """The counting bot served by ``make_app`` with ``inbox`` (``sqlite`` or ``memory``); without ``fast``, its
    deliveries go through Flask's request handling (``fast_deliveries=False``) instead of in front of it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = bot_env(inbox, data_dir, whole=whole)
    if inbox == "memory" and not whole:
        return make_app([bot], env, executor=Discard(), fast_deliveries=fast)
    return make_app([bot], env, fast_deliveries=fast)


def close(app: Flask) -> None:
    """Stop the app's inbox threads (best effort: the ``Inbox`` protocol's ``shutdown``)."""
    inbox = getattr(app.extensions.get("bots"), "inbox", None)
    shutdown = getattr(inbox, "shutdown", None)
    if shutdown is not None:
        shutdown(5.0)


def prepare(deliveries: list[Signed]) -> list[tuple[dict, bytes]]:
    """WSGI environs for ``deliveries``, built before the clock starts."""
    return [(EnvironBuilder(path=d.path, method="POST", data=d.body, headers=d.headers).get_environ(), d.body)
            for d in deliveries]


def _start_response(status: str, headers: list, exc_info: object = None) -> None:
    _start_response.status = status


def call(app: Callable, environ: dict, body: bytes) -> str:
    """One WSGI call with a fresh copy of ``environ``; reads the whole answer; the status line."""
    answer = app(dict(environ, **{"wsgi.input": io.BytesIO(body)}), _start_response)
    try:
        b"".join(answer)
    finally:
        if hasattr(answer, "close"):
            answer.close()
    return _start_response.status


_HEALTH = EnvironBuilder(path="/healthz", method="GET").get_environ()


def pending(app: Flask) -> int | None:
    """``pending`` from the app's ``/healthz`` JSON; None when it does not answer 200 with one."""
    out = io.BytesIO()

    def start(status: str, headers: list, exc_info: object = None) -> None:
        start.status = status
    answer = app(dict(_HEALTH, **{"wsgi.input": io.BytesIO()}), start)
    try:
        for chunk in answer:
            out.write(chunk)
    finally:
        if hasattr(answer, "close"):
            answer.close()
    if not start.status.startswith("200"):
        return None
    value = json.loads(out.getvalue()).get("pending")
    return value if isinstance(value, int) else None


def settle(app: Flask, deadline: float) -> bool:
    """Wait until ``/healthz`` reports nothing pending (the handlers' bookkeeping done); False at ``deadline``."""
    while True:
        if pending(app) == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)


def run_round(served: Served, deliveries: list[Signed], *, timeout: float = 60.0) -> Round:
    """POST ``deliveries`` to ``served`` and, for the whole path, wait until each one's handler ran and
    nothing is pending; the CPU of the whole process over that time."""
    prepared = prepare(deliveries)
    mids = [mid for delivery in deliveries for mid in delivery.mids]
    if served.whole:
        runs.in_memory()
        runs.expect(len(mids))
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    refused = sum(not call(served.app, environ, body).startswith("200") for environ, body in prepared)
    problem = None
    if served.whole:
        deadline = time.monotonic() + timeout
        if refused:
            problem = f"{served.name}: {refused} of {len(prepared)} deliveries were not answered 200"
        elif not runs.done.wait(timeout):
            problem = (f"{served.name}: handlers ran for {len(runs.mids)} of {len(mids)} deliveries "
                       f"within {timeout:.0f} s")
        elif not settle(served.app, deadline):
            problem = f"{served.name}: /healthz still reported pending work {timeout:.0f} s after the load"
    elif refused:
        problem = f"{served.name}: {refused} of {len(prepared)} deliveries were not answered 200"
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    tally = None
    if served.whole:
        tally = accounting.tally(mids, list(runs.mids), accepted=len(prepared) - refused)
        if problem is None and not tally.ok:
            problem = f"{served.name}: {tally.describe()}"
        elif problem is not None:
            problem += f" ({tally.describe()})"
    return Round(len(prepared), cpu, wall, tally, problem)


def build(data_dir: Path) -> list[Served]:
    """The floor, the HMAC receiver, and the counting bot on each inbox, request path and whole."""
    served = [Served(FLOOR, floor.app), Served(PEER, peer_hmac.app)]
    for inbox, label in INBOXES.items():
        served.append(Served(f"{label}, request path", real_app(inbox, data_dir / f"{inbox}-request", whole=False),
                             inbox=inbox))
        served.append(Served(f"{label}, whole path", real_app(inbox, data_dir / f"{inbox}-whole", whole=True),
                             whole=True, inbox=inbox))
    served.append(Served(THROUGH_FLASK, real_app("sqlite", data_dir / "sqlite-flask", whole=True, fast=False),
                         whole=True))
    return served


def run(*, rounds: int = 7, count: int = 1500, warmup: int = 200, timeout: float = 60.0) -> Result:
    """Warm every app up, then ``rounds`` rounds of ``count`` fresh deliveries for each app, each right after one
    of the floor's."""
    with tempfile.TemporaryDirectory(prefix="bench-inprocess-") as folder:
        apps = build(Path(folder))
        try:
            measured = {one.name: Measured(one) for one in apps}
            for one in apps:
                warm = run_round(one, payloads.distinct(warmup), timeout=timeout)
                if warm.problem:
                    raise NotFinished(f"warm-up: {warm.problem}")
            floor = measured[FLOOR]
            for _ in range(rounds):
                for one in apps[1:]:  # each app's round right after one of the floor's: a pair
                    first = run_round(floor.served, payloads.distinct(count), timeout=timeout)
                    then = run_round(one, payloads.distinct(count), timeout=timeout)
                    floor.rounds.append(first)
                    measured[one.name].rounds.append(then)
                    measured[one.name].pairs.append((first, then))
            for one in measured.values():
                if not one.valid:
                    raise NotFinished(f"no round completed: {'; '.join(one.problems)}")
            return Result(measured, count)
        finally:
            for one in apps:
                close(one.app)


def table(result: Result) -> str:
    """Median CPU and wall time per event, spread, and ratios to the floor and the HMAC receiver."""
    lines = [f"WSGI call with prepared environs, {result.count} distinct deliveries a round, median of "
             f"{len(result.measured[PEER].rounds)} rounds; CPU = time.process_time() (every thread)",
             "floor = median over the rounds of CPU per event / the floor's in the round just before (lowest-highest)",
             f"{'app':<24} {'CPU µs/ev':>10} {'wall µs/ev':>11} {'spread':>7} {'floor':>7} {'pairs':>11} {'hmac':>6}"
             "  target"]
    for name, one in result.measured.items():
        target = TARGETS.get(one.served.inbox) if one.served.whole else None
        pairs = f"{one.ratios[0]:.2f}-{one.ratios[-1]:.2f}" if one.ratios else "-"
        lines.append(f"{name:<24} {one.cpu_us:>10.1f} {one.wall_us:>11.1f} {one.spread:>7.0%} {one.ratio:>6.2f}x "
                     f"{pairs:>11} {one.cpu_us / result.peer_us:>5.2f}x  {verdict(one.ratio, target)}")
    problems = [problem for one in result.measured.values() for problem in one.problems]
    if problems:
        lines.append(f"rounds left out ({len(problems)}): {'; '.join(problems[:3])}")
    lines.append("exactly once: " + ", ".join(
        f"{name}: {sum(r.tally.ok for r in one.rounds)}/{len(one.rounds)} rounds"
        for name, one in result.measured.items() if one.served.whole))
    return "\n".join(lines)


def verdict(ratio: float, target: float | None) -> str:
    """``<= 1.6x: within`` (or OVER) when a target applies, else ``-``."""
    if target is None:
        return "-"
    return f"<= {target}x: {'within' if ratio <= target else 'OVER'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=1500, help="deliveries per app and round")
    options = parser.parse_args()
    print(table(run(rounds=options.rounds, count=options.count)))


if __name__ == "__main__":
    main()

"""What the benchmarks count besides time: handler runs per delivery, and the CPU of processes.

- :func:`tally` compares the mids sent with the mids the counting bot recorded: every accepted
  delivery must have run exactly once; it names the missing, the duplicated and the unknown ones.
- :class:`RunFiles` reads the per-process run files the counting bot writes under gunicorn and
  Celery (``BENCH_RUNS_DIR``), incrementally: each run's mid and, when its line carries one, the
  wall-clock time it ran; and tells when the last one was written.
- :func:`tree_cpu` sums user and system CPU (``utime + stime + cutime + cstime`` from
  ``/proc/<pid>/stat``) of processes and all their descendants: the master, its workers, their
  children, and the children already reaped (in the parent's ``cutime``), so a difference of two
  readings is the CPU the whole tree spent in between.
- :func:`pair_ratios` and :func:`paired_median` read a figure from pairs of adjacent loads (the floor's,
  then an app's): the host's CPU speed drifts over seconds, and the two loads of a pair share most of it.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Tally:
    """Handler runs against deliveries sent: ``ok`` when each accepted delivery ran exactly once."""

    sent: int
    accepted: int
    ran: int  # runs recorded, repeats included
    missing: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)  # mid -> runs, for mids that ran more than once
    unknown: list[str] = field(default_factory=list)  # recorded mids that were not sent (in this load)

    @property
    def handled(self) -> int:
        """Distinct sent mids that ran."""
        return self.sent - len(self.missing)

    @property
    def ok(self) -> bool:
        return not self.duplicated and not self.unknown and self.handled == self.accepted

    def describe(self, limit: int = 3) -> str:
        """``exactly once`` or what went wrong, naming a few mids."""
        if self.ok:
            return "each accepted delivery ran exactly once"
        parts = []
        if self.handled != self.accepted:
            parts.append(f"{self.handled} of {self.accepted} accepted deliveries ran")
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({_some(self.missing, limit)})")
        if self.duplicated:
            parts.append(f"{len(self.duplicated)} ran more than once "
                         f"({_some([f'{mid} x{n}' for mid, n in self.duplicated.items()], limit)})")
        if self.unknown:
            parts.append(f"{len(self.unknown)} runs for mids not sent in this load, so late or repeated runs of an "
                         f"earlier one ({_some(self.unknown, limit)})")
        return "; ".join(parts)


def _some(values: list[str], limit: int) -> str:
    return ", ".join(values[:limit]) + (", ..." if len(values) > limit else "")


def tally(sent: Iterable[str], ran: Iterable[str], *, accepted: int | None = None) -> Tally:
    """Compare ``sent`` mids with the ``ran`` mids the counting bot recorded. ``accepted`` (2xx answers)
    defaults to every one sent; a load generator does not know which were refused with 503, so then
    only their number is checked: as many distinct mids ran as were accepted."""
    sent = list(sent)
    runs = Counter(ran)
    wanted = set(sent)
    missing = [mid for mid in sent if mid not in runs]
    duplicated = {mid: n for mid, n in runs.items() if n > 1 and mid in wanted}
    unknown = [mid for mid in runs if mid not in wanted]
    return Tally(len(sent), len(sent) if accepted is None else accepted, sum(runs.values()), missing, duplicated,
                 unknown)


class RunFiles:
    """The ``<pid>.runs`` files under ``folder``: the mids recorded since :meth:`mark`, and in :attr:`times`
    (same order) when each ran. A line is ``<mid> <time.time()>``, or only ``<mid>`` (then the time is NaN)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}
        self.mids: list[str] = []
        self.times: list[float] = []  # wall-clock time of each run in mids, NaN when its line has none
        self.last_write = 0.0  # wall-clock time of the latest write since mark (file mtime)
        self._wanted: set[str] | None = None
        self._seen: set[str] = set()

    def mark(self, wanted: Iterable[str] | None = None) -> None:
        """From now on count only runs recorded after this call; with ``wanted``, :meth:`poll` answers
        how many distinct ones of those mids ran (repeats and strays do not make a load look done)."""
        self.poll()
        self.mids = []
        self.times = []
        self.last_write = 0.0
        self._wanted = set(wanted) if wanted is not None else None
        self._seen = set()

    def poll(self) -> int:
        """Read what was appended since the last poll; the number of runs since :meth:`mark` (of distinct
        wanted mids, when :meth:`mark` was given them)."""
        before = len(self.mids)
        self._read()
        if self._wanted is None:
            return len(self.mids)
        self._seen.update(mid for mid in self.mids[before:] if mid in self._wanted)
        return len(self._seen)

    def _read(self) -> None:
        for path in self.folder.glob("*.runs"):
            offset = self._offsets.get(path, 0)
            try:
                status = path.stat()
                if status.st_size <= offset:
                    continue
                with path.open("rb") as source:
                    source.seek(offset)
                    chunk = source.read()
            except FileNotFoundError:
                continue
            self._offsets[path] = offset + len(chunk)
            data = self._partial.pop(path, b"") + chunk
            lines = data.split(b"\n")
            if lines[-1]:
                self._partial[path] = lines[-1]
            for line in lines[:-1]:
                if line:
                    mid, when = _run(line)
                    self.mids.append(mid)
                    self.times.append(when)
            self.last_write = max(self.last_write, status.st_mtime_ns / 1e9)


def _run(line: bytes) -> tuple[str, float]:
    """``<mid> <time>`` or a bare ``<mid>`` (as the counting bot wrote it before runs carried a time)."""
    mid, space, when = line.rpartition(b" ")
    if space:
        try:
            return mid.decode(), float(when)
        except ValueError:
            pass
    return line.decode(), float("nan")


def tree_cpu(roots: Iterable[int]) -> float:
    """CPU seconds (user + system, reaped children included) of ``roots`` and every descendant."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, seconds)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                stats[int(entry.name)] = found
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo, seen = 0.0, [pid for pid in roots if pid in stats], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo += children.get(pid, [])
    return total


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds incl. reaped children) from ``/proc/<pid>/stat``; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    # fields[0] is the state; then ppid, ... utime (11), stime (12), cutime (13), cstime (14)
    return int(fields[1]), sum(int(value) for value in fields[11:15]) / _TICK


def machine_times() -> tuple[float, float]:
    """The machine's CPU time stolen by the hypervisor and its CPU time in all, in ticks since boot (the
    ``cpu`` line of ``/proc/stat``); zeros where there is none. A window in which a virtual machine's host ran
    others shows as latency the server did not cause."""
    try:
        with open("/proc/stat") as stat:
            ticks = [float(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    return (ticks[7] if len(ticks) > 7 else 0.0), sum(ticks)


def steal_share(before: tuple[float, float], after: tuple[float, float]) -> float:
    """The share of the machine's CPU time the hypervisor gave to others between two readings (NaN without any)."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else math.nan


def pair_ratios(pairs: Iterable[tuple[Any, Any]], figure: Callable[[Any], float]) -> list[float]:
    """``figure`` of the app's load over the floor's, for each ``(floor, app)`` pair where both completed (no
    ``problem``) and the floor's figure is a positive number; lowest first."""
    return sorted(figure(one) / figure(floor) for floor, one in pairs
                  if one.problem is None and floor.problem is None and figure(floor) > 0)


def paired_median(pairs: Sequence[tuple[Any, Any]], figure: Callable[[Any], float]) -> float:
    """The median of :func:`pair_ratios`: 1 without pairs (the floor itself), NaN when no pair completed."""
    if not pairs:
        return 1.0
    ratios = pair_ratios(pairs, figure)
    return statistics.median(ratios) if ratios else float("nan")

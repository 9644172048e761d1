"""What an inbox reports about itself for the health endpoints and the metrics: backlog, wait, threads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class InboxStatus:
    """A reading of one inbox, as this process sees it.

    ``pending``: events and messages waiting (parked ones not counted). ``waited``: seconds the
    longest-waiting due work has waited, None when nothing is due. ``threads``: for each kind of
    thread this process runs (``handler``, ``sender``), how many are alive of how many it started.
    """

    pending: int
    waited: float | None = None
    threads: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def dead_threads(self) -> dict[str, int]:
        """Kinds of thread of which some have died, with how many."""
        return {kind: started - alive for kind, (alive, started) in self.threads.items() if alive < started}


def waited(since: float | None, now: float) -> float | None:
    """Seconds from ``since`` to ``now``, never negative; None stays None."""
    return None if since is None else max(0.0, now - since)

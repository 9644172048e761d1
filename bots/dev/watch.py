"""Notice saves: the modification times of the files under a folder, compared between two looks (polling, so it
needs no dependency and works on any file system; every half second is quick enough for a person)."""

from __future__ import annotations

from pathlib import Path

Snapshot = dict[str, int]


def snapshot(folder: Path, pattern: str = "*.py") -> Snapshot:
    """Each file matching ``pattern`` under ``folder`` (``__pycache__`` left out) and its mtime in nanoseconds."""
    found: Snapshot = {}
    for path in folder.rglob(pattern):
        if "__pycache__" in path.parts:
            continue
        try:
            found[str(path)] = path.stat().st_mtime_ns
        except FileNotFoundError:  # removed while we looked
            continue
    return found


def mtime(path: Path) -> int:
    """``path``'s mtime in nanoseconds, 0 when it does not exist."""
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0

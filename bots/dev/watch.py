"""Notice saves: the modification times of the files under a folder, compared between two looks (polling, so it
needs no dependency and works on any file system; every half second is quick enough for a person)."""

from __future__ import annotations

from pathlib import Path

Snapshot = dict[str, int]


#: Ends of the names editors and Python write beside the files people save: they are not saves.
SCRATCH = ("~", ".swp", ".swx", ".tmp", ".pyc")


def snapshot(folder: Path) -> Snapshot:
    """Each file under ``folder`` and its mtime in nanoseconds: modules and the data they read (a bot's
    ``handlers/data/*.json``), without ``__pycache__``, hidden files and editors' scratch files."""
    found: Snapshot = {}
    for path in folder.rglob("*"):
        if "__pycache__" in path.parts or path.name.startswith((".", "#")) or path.name.endswith(SCRATCH):
            continue
        if not path.is_file():
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

"""Where the webhook writes before it answers 200: an append-only log of verified bodies, one per process.

A delivery is accepted when its record is in this process's log file (``arrivals/<host>-<pid>-<run>-<n>.log``
under ``DATA_DIR``): one ``write()`` of the body as it came, with its bot and arrival time, so the
200 costs a system call instead of a database transaction and never waits on another process. The
kernel holds the bytes once the call returns, so a process killed at any moment after it loses
nothing (as SQLite's ``synchronous=NORMAL``: a power cut may lose the last writes).

A record is ``length, crc32, arrival time`` (``>IId``) then ``bot\\n`` and the body. Workers read
the logs from the offset the journal has committed for each file, in the transaction that moves the
records into the events table, so each record is moved once. A log is rotated at ``SEGMENT_BYTES``
and removed once it is read to its end and its writer has moved on or is gone.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..envelope import Item

HEADER = struct.Struct(">IId")
SEGMENT_BYTES = 16 * 1024 * 1024
# Records whose items are kept in memory until read back. Small on purpose: a few thousand parsed bodies kept
# alive made the soak's worker RSS climb by bursts and its reply p99 jump (the garbage collector walks them).
PARSED_MAX = 1_000
LIST_EVERY = 0.2  # seconds between listings of the log folder
CHUNK_BYTES = 1024 * 1024  # read at a time; a longer record is read whole
RUN = uuid.uuid4().hex[:8]


@dataclass(frozen=True, slots=True)
class Record:
    """One accepted delivery as read back: its bot, body, arrival time, and where the next record starts."""

    bot: str
    body: bytes
    received_at: float
    end: int


@dataclass(frozen=True, slots=True)
class Torn:
    """Bytes at ``start`` that are not a whole record: being written now, or cut short by a crash."""

    start: int


class Arrivals:
    """This process's log: appends under a lock, reopened under a new name after a fork."""

    def __init__(self, folder: str | Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._pid = 0
        self._fd = -1
        self._segment = 0
        self._size = 0
        self._fd_name = ""
        self._fd_path: Path | None = None
        #: Items of this process's records not yet read back, by (log name, offset where the record ends).
        self.parsed: dict[tuple[str, int], Sequence[Item]] = {}
        self._listed: list[Path] = []
        self._listed_at = -LIST_EVERY

    @property
    def path(self) -> Path:
        """The file this process appends to now."""
        return self.folder / f"{socket.gethostname()}-{os.getpid()}-{RUN}-{self._segment:06d}.log"

    def append(self, bot: str, body: bytes, received_at: float | None = None,
               parsed: Sequence[Item] | None = None) -> None:
        """Write one delivery: in the kernel, safe from a crash of this process, when this returns. ``parsed``
        (its items) is kept in memory by where the record ends, so a worker of this process need not parse it again."""
        payload = bot.encode() + b"\n" + body
        at = time.time() if received_at is None else received_at
        record = HEADER.pack(len(payload), zlib.crc32(payload), at) + payload
        with self._lock:
            if self._pid != os.getpid() or self._size >= self.segment_bytes:
                self._open()
            try:
                written = os.write(self._fd, record)
                while written < len(record):
                    written += os.write(self._fd, record[written:])
            except OSError:
                self._size = self.segment_bytes  # part of it may be written: go on in a new log, past these bytes
                raise
            self._size += len(record)
            if parsed is not None:
                if len(self.parsed) >= PARSED_MAX:
                    drop_oldest(self.parsed, PARSED_MAX // 2)
                self.parsed[(self._fd_name, self._size)] = parsed

    def forget_parsed(self, log: str, offset: int) -> None:
        """Drop the kept items of ``log``'s records that end at or before ``offset``: someone has read them back."""
        done = []
        for key in self.parsed:  # in the order they were written: stop at the first not yet read back
            if key[0] == log and key[1] > offset:
                break
            done.append(key)
        for key in done:
            del self.parsed[key]

    def current(self) -> Path | None:
        """The log this process writes to, if it has written any."""
        return self._fd_path if self._pid == os.getpid() and self._fd >= 0 else None

    def _open(self) -> None:
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
            self._fd = -1  # never closed twice, should the next open fail
            self._segment += 1
        elif self._pid != os.getpid():
            self._segment = 0
        self._pid = os.getpid()
        self._fd_path = self.path
        self._fd = os.open(self._fd_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fd_name = self._fd_path.name
        self._size = os.fstat(self._fd).st_size

    def files(self, fresh: bool = False) -> list[Path]:
        """Every process's logs, oldest segment of each writer first; the folder is listed at most every
        ``LIST_EVERY`` seconds unless ``fresh`` (a new process's log is found that much later), this process's own
        log always."""
        now = time.monotonic()
        if fresh or now >= self._listed_at + LIST_EVERY:
            self._listed, self._listed_at = sorted(self.folder.glob("*.log")), now
        own = self.current()
        if own is None or own in self._listed:
            return self._listed
        return sorted([*self._listed, own])


def drop_oldest(kept: dict[Any, Any], keep: int) -> None:
    """Forget all but the ``keep`` newest entries of ``kept`` (a dict is in insertion order): what is dropped is
    parsed again from its stored body if it is still needed."""
    for key in list(itertools.islice(kept, max(0, len(kept) - keep))):
        del kept[key]


def read(path: Path, offset: int, limit: int, chunk: int = CHUNK_BYTES) -> Iterator[Record | Torn]:
    """Up to ``limit`` whole records of ``path`` from ``offset``, then a :class:`Torn` when the file ends in
    bytes that are not a whole record (being written now, or cut short by a crash)."""
    try:
        with path.open("rb") as log:
            size = os.fstat(log.fileno()).st_size
            log.seek(offset)
            data = log.read(chunk)
            if len(data) >= HEADER.size and HEADER.size + HEADER.unpack_from(data)[0] > len(data):
                data += log.read(HEADER.size + HEADER.unpack_from(data)[0] - len(data))
    except FileNotFoundError:
        return
    at_end, position = offset + len(data) >= size, 0
    for _ in range(limit):
        if position >= len(data):
            return
        length, crc, received_at = HEADER.unpack_from(data, position) if len(data) - position >= HEADER.size \
            else (len(data), 0, 0.0)
        payload = data[position + HEADER.size:position + HEADER.size + length]
        if len(payload) < length or len(data) - position < HEADER.size:
            if at_end:
                yield Torn(offset + position)
            return
        if zlib.crc32(payload) != crc:
            yield Torn(offset + position)
            return
        position += HEADER.size + length
        bot, _, body = payload.partition(b"\n")
        yield Record(bot.decode("utf-8", "replace"), body, received_at, offset + position)


def writer(path: Path) -> tuple[str, int, str, int] | None:
    """Host, pid, run and segment number a log's name gives, or None for a name this module did not make."""
    parts = path.stem.rsplit("-", 3)
    if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2], int(parts[3])


def finished(path: Path, files: list[Path]) -> bool:
    """True when nobody will write to ``path`` again: its writer has a newer segment, or its process is gone."""
    name = writer(path)
    if name is None:
        return False
    host, pid, _, segment = name
    if any((other := writer(file)) is not None and other[:3] == name[:3] and other[3] > segment for file in files):
        return True
    return host == socket.gethostname() and not alive(pid)


def alive(pid: int) -> bool:
    """True when a process with this id exists (or might: one we may not signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""glibc's malloc in a threaded server: fewer arenas, and free pages handed back now and then.

glibc gives each new thread that allocates an arena of its own, up to eight per core, and an arena
keeps the most its threads ever held at once. A worker's request, handler and sender threads
made 13 of them; in the soak (``bench/soak.py``) they held 6 MB per worker at minute 1 and 11 MB at
minute 7, growing at each latency burst, while the rest of the heap stayed flat. So each process that
serves bots keeps to ``ARENAS`` arenas and gives free pages back to the kernel every ``TRIM_EVERY``
seconds (``malloc_trim``). ``MALLOC_ARENA_MAX`` in the environment, which glibc reads at start, wins.
Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from typing import Any

ARENAS = 2
TRIM_EVERY = 30.0  # seconds
M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h

_started_in = 0  # the pid whose trimming thread runs
_lock = threading.Lock()


def tune(arenas: int = ARENAS, trim_every: float = TRIM_EVERY) -> bool:
    """Cap this process's malloc arenas (unless ``MALLOC_ARENA_MAX`` is set) and start its trimming thread,
    once per process (again in a forked child); True when glibc's malloc is there to tune."""
    libc = _glibc()
    if libc is None:
        return False
    global _started_in
    with _lock:
        if _started_in == os.getpid():
            return True
        _started_in = os.getpid()
    if not os.environ.get("MALLOC_ARENA_MAX"):
        libc.mallopt(M_ARENA_MAX, arenas)
    threading.Thread(target=_trim_forever, args=(libc, trim_every), name="bots-malloc-trim", daemon=True).start()
    return True


def _trim_forever(libc: Any, every: float) -> None:
    """Hand free pages of every arena back to the kernel, every ``every`` seconds, for the life of the process."""
    while True:
        time.sleep(every)
        libc.malloc_trim(0)


def _glibc() -> Any | None:
    """The C library, when it is glibc (it has ``mallopt`` and ``malloc_trim``); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p  # glibc only: musl's mallopt is a stub, no malloc_trim
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc

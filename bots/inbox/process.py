"""The SQLite inbox's handler and sender threads in a process of their own, forked by a gunicorn worker as it boots.

In one process the request thread and the handler threads take turns at the GIL: every SQLite step and
system call of one hands it to the other, and each hand-off is a wake-up of a thread that may find the
GIL taken again. Under gunicorn with two sync workers that left 13 % of the two cores idle during a
load (2 % for bare Flask) and cost 1.28x bare Flask's CPU per event; the same threads in a process of
their own cost 1.08x, and the durable path served 0.90 of bare Flask's rate instead of 0.72.

So a worker forks its handler process right after it boots (single-threaded, before any request), then
serves requests only: each accepted delivery is appended to its log as before, and a byte down a pipe
wakes the handler process, which runs the same :class:`~bots.workers.Workers` pools. The two live and
die together: the child gets SIGTERM when its worker exits (``PR_SET_PDEATHSIG``, and it watches its
parent too), and the worker stops serving (gunicorn starts a new one, which forks a new child) when
its handler process dies. The journal needs nothing new: it already works across processes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Callable

from ..workers import Workers

logger = logging.getLogger("bots")

PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when the thread that forked it exits
READ_BYTES = 4096  # wake-up bytes read at once: under load many come together and count as one look


class HandlerProcess:
    """A forked child that runs ``work(stopping)`` until its parent exits or it is told to stop; the parent wakes
    its pools through a pipe (one byte per wake-up, named by the pool)."""

    def __init__(self, work: Callable[[threading.Event], None], wakes: dict[bytes, Callable[[int], None]],
                 on_lost: Callable[[], None] = lambda: None) -> None:
        self.work = work
        self.wakes = wakes
        self.on_lost = on_lost
        self.pid = 0
        self._pipe = -1
        self._exited: int | None = None

    def fork(self) -> int:
        """Start the child; in the parent, return its pid (the child never returns from here)."""
        read, write = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(write)
                code = self._child(read, parent)
            except BaseException:
                logger.exception("the handler process failed")
            finally:
                os._exit(code)
        os.close(read)
        os.set_blocking(write, False)
        self.pid, self._pipe = pid, write
        signal.signal(signal.SIGCHLD, self._child_changed)
        logger.info("handler process %d works on the inbox of worker %d", pid, parent)
        return pid

    def wake(self, pools: bytes) -> None:
        """Wake a thread in the child for each byte (a pool's code); a full pipe already holds wake-ups enough."""
        try:
            os.write(self._pipe, pools)
        except (BlockingIOError, BrokenPipeError, OSError):
            pass

    def alive(self) -> bool:
        """True while the child runs (reaping it once it has exited)."""
        if self._exited is None and self.pid:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, 0
            if pid == self.pid:
                self._exited = status
        return self._exited is None and self.pid != 0

    def stop(self, timeout: float = 10.0) -> None:
        """Tell the child to finish its running work and exit; wait up to ``timeout`` seconds for it."""
        if not self.alive():
            return
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)

    def _child_changed(self, signum: int, frame: object) -> None:
        """SIGCHLD in the parent: if it was the handler process that exited, nothing handles this worker's events
        any more, so the worker is told to stop (its server starts a new one, with a new handler process)."""
        if not self.alive():
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            logger.error("handler process %d exited (status %s); this worker stops so that a new one takes over",
                         self.pid, self._exited)
            self.on_lost()

    def _child(self, read: int, parent: int) -> int:
        """The child's life: its own signals, no inherited sockets, the pools' threads, the pipe read, the wait."""
        stopping = threading.Event()
        _own_signals(stopping)
        _die_with(parent)
        _close_sockets()
        threading.Thread(target=self._read_wakes, args=(read, stopping), name="bots-wakes", daemon=True).start()
        self.work(stopping)  # returns once ``stopping`` is set and the pools have stopped
        return 0

    def _read_wakes(self, read: int, stopping: threading.Event) -> None:
        """Pass each pool's wake-ups from the pipe on; the pipe's end (the parent is gone, however it died) stops
    the child."""
        while data := os.read(read, READ_BYTES):
            for pool, wake in self.wakes.items():
                if count := data.count(pool):
                    wake(count)
        stopping.set()


def _own_signals(stopping: threading.Event) -> None:
    """Drop the worker's signal handlers (gunicorn's, its wake-up fd): SIGTERM, SIGINT and SIGQUIT stop the child."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD, signal.SIGABRT):
        signal.signal(signum, signal.SIG_DFL)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, lambda *_: stopping.set())


def _die_with(parent: int) -> None:
    """Ask Linux for SIGTERM when the parent exits (elsewhere the end of the wake-up pipe tells the child)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent exited before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _close_sockets() -> None:
    """Let go of every socket inherited from the worker (its listeners, above all): the child serves no one, and
    a listener held here would keep the port bound after the worker is gone. Each is replaced by ``/dev/null``
    rather than closed, so the worker's socket objects, should they be collected here, close that and not a file
    that took their number since."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
            fd = int(name)
            try:
                if fd != null and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
            except OSError:
                continue
    finally:
        os.close(null)


class Remote:
    """A pool whose threads run in the handler process, as its worker sees it: a wake-up is a byte down the pipe,
    and its threads count as running while the process does."""

    def __init__(self, pool: Workers | Remote, process: HandlerProcess, code: bytes) -> None:
        self.name: str = pool.name
        self.count: int = pool.count
        self.process = process
        self.code = code

    def start(self) -> None:
        return None

    def stop(self, timeout: float = 10.0) -> None:
        self.process.stop(timeout)

    def wake(self, n: int = 1) -> None:
        self.process.wake(self.code * max(1, min(n, 64)))

    def running(self) -> tuple[int, int]:
        return (self.count if self.process.alive() else 0), self.count

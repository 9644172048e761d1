"""The SQLite inbox's handler and sender threads in one process of their own per machine, forked by a gunicorn
worker as it boots.

In one process the request thread and the handler threads take turns at the GIL: every SQLite step and
system call of one hands it to the other, and each hand-off is a wake-up of a thread that may find the
GIL taken again. Under gunicorn with two sync workers that left 13 % of the two cores idle during a
load (2 % for bare Flask) and cost 1.28x bare Flask's CPU per event; the same threads in one process of
their own cost 1.08x, and the durable path served 0.90 of bare Flask's rate instead of 0.72. (A handler
process per worker did worse at two workers, 0.73: two takers halve each other's batches and wait for
each other's write lock.)

So the first worker to boot takes the machine's handler lock (``flock`` on ``handlers.lock`` in the
inbox's folder) and forks the handler process (single-threaded yet, before any request), which holds
the lock as long as it lives. Every worker then serves requests only: each accepted delivery is
appended to its log as before, and a byte down a FIFO (``handlers.wake``) wakes the handler process,
which runs the same :class:`~bots.workers.Workers` pools. The child gets SIGTERM when its worker exits
(``PR_SET_PDEATHSIG``, and it watches its parent too); when it is gone, its worker stops (SIGCHLD) and
any other worker stops once it sees the lock free, and gunicorn's new worker forks a new one as it
boots. The journal needs nothing new: it already works across processes.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..workers import FAST_INTERVAL, Workers

logger = logging.getLogger("bots")

PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when the thread that forked it exits
READ_BYTES = 4096  # wake-up bytes read at once: under load many come together and count as one look
WAKE_EVERY = FAST_INTERVAL  # seconds: a worker sends a pool at most one wake-up this often
LOOK_EVERY = 1.0  # seconds between a process's looks at whether the handler process it relies on is there
LOST_AFTER = 3  # looks in a row that find no handler process before a worker stops to let a new one start it
LOCK, FIFO = "handlers.lock", "handlers.wake"  # in the inbox's folder: who runs the handlers, how to wake them


def claim(folder: Path) -> int | None:
    """Take the machine's handler lock (``flock`` on ``handlers.lock``): the descriptor holding it, or None when
    a handler process holds it. The lock lives as long as the process that holds it, however that ends."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class Wakes:
    """The FIFO every web worker of the machine wakes the handler process through: a byte a wake-up, naming the
    pool. A worker that finds no reader (none yet, or it died) drops the wake-up: the handlers poll anyway."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FIFO
        self._fd = -1
        self._next_open = 0.0

    def reader(self) -> int:
        """The handler process's end; opened read-write, so the open never blocks and a read never ends."""
        try:
            os.mkfifo(self.path, 0o600)
        except FileExistsError:
            pass
        return os.open(self.path, os.O_RDWR)

    def send(self, pools: bytes) -> None:
        if self._fd < 0 and not self._open():
            return
        try:
            os.write(self._fd, pools)
        except BlockingIOError:
            pass  # full: wake-ups enough are waiting
        except OSError:  # EPIPE: the reader is gone
            os.close(self._fd)
            self._fd = -1

    def _open(self) -> bool:
        now = time.monotonic()
        if now < self._next_open:
            return False
        self._next_open = now + LOOK_EVERY
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no FIFO yet, or no reader (ENXIO)
            return False
        return True


class HandlerProcess:
    """The machine's handler process as the worker that forked it sees it: a child that runs ``work(stopping)``
    until this worker exits or it is told to stop, holding the handler lock all the while."""

    def __init__(self, folder: Path, work: Callable[[threading.Event], None],
                 wakes: dict[bytes, Callable[[int], None]], on_lost: Callable[[], None] = lambda: None) -> None:
        self.work = work
        self.wakes = wakes
        self.on_lost = on_lost
        self.channel = Wakes(folder)
        self.pid = 0
        self._exited: int | None = None

    def fork(self, lock: int) -> int:
        """Start the child, handing it ``lock`` (from :func:`claim`); in the parent, return its pid (the child never
        returns from here)."""
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = self._child(parent)
            except BaseException:
                logger.exception("the handler process failed")
            finally:
                os._exit(code)
        os.close(lock)  # the child's copy holds it now
        self.pid = pid
        signal.signal(signal.SIGCHLD, self._child_changed)
        logger.info("handler process %d works on the inbox of this machine (forked by worker %d)", pid, parent)
        return pid

    def wake(self, pools: bytes) -> None:
        """Wake a thread in the child for each byte (a pool's code)."""
        self.channel.send(pools)

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
        """SIGCHLD in the parent: if it was the handler process that exited, nothing handles the machine's events
        any more, so this worker is told to stop (its server starts a new one, which forks a new child)."""
        if not self.alive():
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            logger.error("handler process %d exited (status %s); this worker stops so that a new one takes over",
                         self.pid, self._exited)
            self.on_lost()

    def _child(self, parent: int) -> int:
        """The child's life: its own signals, no inherited sockets, the pools' threads, the FIFO read, the wait."""
        stopping = threading.Event()
        told, tell = os.pipe()
        _own_signals(tell)
        _die_with(parent)
        _close_sockets()
        read = self.channel.reader()
        threading.Thread(target=self._read_wakes, args=(read,), name="bots-wakes", daemon=True).start()
        threading.Thread(target=_stop_when_told, args=(told, stopping), name="bots-stop", daemon=True).start()
        threading.Thread(target=_watch_parent, args=(parent, tell), name="bots-parent", daemon=True).start()
        self.work(stopping)  # returns once ``stopping`` is set and the pools have stopped
        return 0

    def _read_wakes(self, read: int) -> None:
        """Pass each pool's wake-ups from the FIFO on."""
        while data := os.read(read, READ_BYTES):
            for pool, wake in self.wakes.items():
                if count := data.count(pool):
                    wake(count)


class Elsewhere:
    """The machine's handler process as every other worker sees it: wake-ups go through the FIFO, and once no
    process holds the handler lock (its worker is gone), this worker stops, so that its successor, as it boots,
    forks a new one."""

    def __init__(self, folder: Path, on_lost: Callable[[], None] = lambda: None) -> None:
        self.folder = folder
        self.on_lost = on_lost
        self.channel = Wakes(folder)
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, name="bots-handler-watch", daemon=True).start()

    def wake(self, pools: bytes) -> None:
        self.channel.send(pools)

    def alive(self) -> bool:
        """True while some process holds the handler lock."""
        fd = claim(self.folder)
        if fd is None:
            return True
        os.close(fd)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        """Stop this worker once the lock has been free for ``LOST_AFTER`` looks in a row: long enough for a worker
        that boots meanwhile (the usual successor of the one that forked it) to take it."""
        free = 0
        while not self._stopped.wait(LOOK_EVERY):
            free = 0 if self.alive() else free + 1
            if free >= LOST_AFTER:
                logger.warning("no handler process works on this machine's inbox; this worker stops so that a new "
                               "one, as it boots, starts one")
                self.on_lost()
                return


def _watch_parent(parent: int, tell: int) -> None:
    """Tell the child to stop once its parent is gone, where ``PR_SET_PDEATHSIG`` is not to be had."""
    while os.getppid() == parent:
        time.sleep(LOOK_EVERY)
    _tell(tell)


def _stop_when_told(told: int, stopping: threading.Event) -> None:
    """Set ``stopping`` on the first byte down the stop pipe: from an ordinary thread, because a signal handler
    that sets an event can run inside the same event's ``set`` (a second SIGTERM) and deadlock on its lock."""
    os.read(told, 1)
    stopping.set()


def _tell(tell: int) -> None:
    """Write a byte down the stop pipe; safe in a signal handler (no lock), and a full pipe has said it already."""
    try:
        os.write(tell, b".")
    except OSError:
        pass


def _own_signals(tell: int) -> None:
    """Drop the worker's signal handlers (gunicorn's, its wake-up fd): SIGTERM, SIGINT and SIGQUIT stop the child,
    through the stop pipe ``tell``."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD, signal.SIGABRT):
        signal.signal(signum, signal.SIG_DFL)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, lambda *_: _tell(tell))


def _die_with(parent: int) -> None:
    """Ask Linux for SIGTERM when the parent exits (elsewhere :func:`_watch_parent` notices)."""
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
    """A pool whose threads run in the handler process, as a web worker sees it: a wake-up is a byte down the
    FIFO, and its threads count as running while the process does."""

    def __init__(self, pool: Workers | Remote, process: HandlerProcess | Elsewhere, code: bytes) -> None:
        self.name: str = pool.name
        self.count: int = pool.count
        self.process = process
        self.code = code
        self._sent = -WAKE_EVERY

    def start(self) -> None:
        return None

    def stop(self, timeout: float = 10.0) -> None:
        self.process.stop(timeout)

    def wake(self, n: int = 1) -> None:
        """Send a wake-up unless one went less than ``WAKE_EVERY`` ago: under load the handler process is awake and
        takes what came meanwhile, and when it goes to sleep it looks once more after that long (``settle``), so
        a wake-up held back here delays no event by more."""
        now = time.monotonic()
        if now - self._sent >= WAKE_EVERY:
            self._sent = now
            self.process.wake(self.code * max(1, min(n, 64)))

    def running(self) -> tuple[int, int]:
        return (self.count if self.process.alive() else 0), self.count

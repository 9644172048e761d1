"""The handler process as a unit: one per machine (its lock), wake-ups reach its pools through the FIFO from any
process, and it ends with its parent."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from bots.inbox.process import Elsewhere, HandlerProcess, Wakes, claim
from tests.support import gone


@pytest.fixture
def reports():
    """A pipe the child writes what it saw to, one line each."""
    read, write = os.pipe()
    yield read, write
    os.close(read)
    os.close(write)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def lines(read: int, count: int, timeout: float = 5.0) -> list[str]:
    data, deadline = b"", time.monotonic() + timeout
    while data.count(b"\n") < count:
        if not select.select([read], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise AssertionError(f"the child reported {data!r} within {timeout} s")
        data += os.read(read, 4096)
    return data.decode().split()


def test_wake_ups_reach_the_childs_pools_by_name_from_any_process_and_stop_ends_it(reports, tmp_path):
    read, write = reports

    def work(stopping: threading.Event) -> None:
        os.write(write, b"started\n")
        stopping.wait()
        os.write(write, b"stopped\n")

    process = HandlerProcess(tmp_path, work, {b"h": lambda n: os.write(write, f"h{n}\n".encode()),
                                              b"s": lambda n: os.write(write, f"s{n}\n".encode())})
    process.fork(claim(tmp_path))
    assert lines(read, 1) == ["started"]
    process.wake(b"s")
    assert lines(read, 1) == ["s1"]
    Wakes(tmp_path).send(b"hhh")  # another worker of the machine
    assert lines(read, 1) == ["h3"]

    process.stop(timeout=5)
    assert lines(read, 1) == ["stopped"]
    assert not process.alive()


def test_the_child_holds_the_machines_handler_lock_while_it_lives(reports, tmp_path):
    process = HandlerProcess(tmp_path, lambda stopping: stopping.wait(), {})
    process.fork(claim(tmp_path))

    assert claim(tmp_path) is None, "a second worker finds the handler process there"
    assert Elsewhere(tmp_path).alive()
    process.stop(timeout=5)
    lock = claim(tmp_path)
    assert lock is not None, "the lock is free once the child is gone"
    os.close(lock)


def test_a_lost_child_is_reported_to_the_parent(reports, tmp_path):
    lost = threading.Event()
    process = HandlerProcess(tmp_path, lambda stopping: os._exit(3), {}, on_lost=lost.set)
    process.fork(claim(tmp_path))
    deadline = time.monotonic() + 5
    while not lost.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)  # the SIGCHLD handler runs on this, the main, thread
    assert lost.is_set()
    assert not process.alive()


def test_the_child_ends_when_its_parent_is_killed(tmp_path):
    script = textwrap.dedent("""
        import sys, threading
        from pathlib import Path
        from bots.inbox.process import HandlerProcess, claim
        def work(stopping):
            stopping.wait()
            open(sys.argv[1] + ".stopped", "w").close()
        folder = Path(sys.argv[1]).parent
        print(HandlerProcess(folder, work, {}).fork(claim(folder)), flush=True)
        threading.Event().wait()
    """)
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "child")], stdout=subprocess.PIPE,
                              text=True, cwd=os.getcwd())
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone(child)
    assert (tmp_path / "child.stopped").exists(), "the child stopped its work before it exited"


class Recorded:
    """Stands in for the handler process: records the wake-ups a worker sends it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def wake(self, pools: bytes) -> None:
        self.sent.append(pools)


def test_a_worker_sends_a_pool_one_wake_up_per_interval_at_most(monkeypatch):
    from bots.inbox import process as module
    from bots.workers import Workers

    now = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    sent = Recorded()
    remote = module.Remote(Workers("handler", 8, list, lambda jobs: None), sent, b"h")

    remote.wake()
    remote.wake()  # the handler process is awake: it takes what came meanwhile
    now[0] += module.WAKE_EVERY * 1.01
    remote.wake()

    assert sent.sent == [b"h", b"h"]


def test_a_sigterm_that_comes_while_the_stop_is_under_way_does_not_deadlock_the_child(reports, tmp_path):
    """SIGTERM from the kernel (its parent died) and from its parent can come together, one while the other's
    handler is setting the stop event: a handler that set the event itself would then wait on a lock its own
    thread holds. Here the signal comes while the child's main thread holds that lock."""
    def work(stopping: threading.Event) -> None:
        with stopping._cond:  # as inside Event.set when a second signal comes
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the handler runs in here, on this thread
        stopping.wait()

    process = HandlerProcess(tmp_path, work, {})
    process.fork(claim(tmp_path))
    try:
        deadline = time.monotonic() + 5
        while process.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not process.alive()
    finally:
        if process.alive():
            os.kill(process.pid, signal.SIGKILL)

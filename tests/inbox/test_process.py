"""The handler process as a unit: wake-ups reach its pools through the pipe, and it ends with its parent."""

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

from bots.inbox.process import HandlerProcess


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


def gone(pid: int) -> bool:
    """No such process, or only its zombie is left."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_wake_ups_reach_the_childs_pools_by_name_and_stop_ends_it(reports):
    read, write = reports

    def work(stopping: threading.Event) -> None:
        os.write(write, b"started\n")
        stopping.wait()
        os.write(write, b"stopped\n")

    process = HandlerProcess(work, {b"h": lambda n: os.write(write, f"h{n}\n".encode()),
                                    b"s": lambda n: os.write(write, f"s{n}\n".encode())})
    process.fork()
    assert lines(read, 1) == ["started"]
    process.wake(b"s")
    assert lines(read, 1) == ["s1"]
    process.wake(b"hhh")
    assert lines(read, 1) == ["h3"]

    process.stop(timeout=5)
    assert lines(read, 1) == ["stopped"]
    assert not process.alive()


def test_a_lost_child_is_reported_to_the_parent(reports):
    lost = threading.Event()
    process = HandlerProcess(lambda stopping: os._exit(3), {}, on_lost=lost.set)
    process.fork()
    deadline = time.monotonic() + 5
    while not lost.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)  # the SIGCHLD handler runs on this, the main, thread
    assert lost.is_set()
    assert not process.alive()


def test_the_child_ends_when_its_parent_is_killed(tmp_path):
    script = textwrap.dedent("""
        import os, sys, threading
        from bots.inbox.process import HandlerProcess
        def work(stopping):
            stopping.wait()
            open(sys.argv[1] + ".stopped", "w").close()
        process = HandlerProcess(work, {})
        print(process.fork(), flush=True)
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

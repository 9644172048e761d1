"""Under gunicorn, the SQLite inbox's events are handled by one handler process per machine, forked by the first
worker to boot; every worker only accepts.

Real gunicorn, real processes, replies through the emulator; nothing is mocked.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import requests

from bots.deliveries import Deliveries
from tests.support import gone
from tests.support import wait_for as wait_until

from .test_gunicorn import GUNICORN, emulator, free_port, post, replies, start, stop, wait_for

__all__ = ["emulator"]  # the module's fixture, shared with test_gunicorn


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def sockets(pid: int) -> list[str]:
    links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    return [link for link in links if link.startswith("socket:")]


def answered(url: str, emulator: str) -> None:
    """A message sent now is answered through the emulator."""
    before = len(replies(emulator, 0))
    assert post(url, Deliveries().message("help")).status_code == 200
    replies(emulator, before + 1)


def serve(emulator: str, workers: int, **env: str):
    port = free_port()
    process = start([str(GUNICORN), "app:app", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                     "--worker-class", "sync", "--graceful-timeout", "5"], {"GRAPH_API_URL": emulator, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/healthz", process)
    except Exception:
        stop(process)
        raise
    return url, process


def handler_process(master: int, workers: int) -> tuple[int, int]:
    """(the worker that forked the handler process, the handler process), once every worker has booted."""
    def booted() -> tuple[int, int] | None:
        found = {worker: children(worker) for worker in children(master)}
        forked = [(worker, kids) for worker, kids in found.items() if kids]
        if len(found) == workers and len(forked) == 1 and len(forked[0][1]) == 1:
            return forked[0][0], forked[0][1][0]
        return None

    return wait_until(booted, timeout=20)


def test_the_first_worker_forks_the_one_handler_process_which_holds_no_socket_and_answers(emulator):
    url, process = serve(emulator, 2)
    try:
        _, child = handler_process(process.pid, 2)
        assert sockets(child) == [], "the handler process lets go of the listener and every other socket"
        before = len(replies(emulator, 0))
        for n in range(6):  # both workers accept some
            assert post(url, Deliveries(sender=f"30{n}").message("help")).status_code == 200
        assert all(call["body"]["message"]["text"] == "What do you need?" for call in replies(emulator, before + 6))
        health = requests.get(f"{url}/healthz", timeout=5).json()
        assert health["threads"] == {"handler": {"alive": 8, "started": 8}, "sender": {"alive": 4, "started": 4}}
    finally:
        stop(process)


def test_a_handler_process_that_dies_ends_its_worker_and_a_new_worker_forks_a_new_one(emulator):
    url, process = serve(emulator, 2)
    try:
        worker, child = handler_process(process.pid, 2)
        os.kill(child, signal.SIGKILL)

        wait_until(lambda: gone(worker), timeout=20)
        _, new_child = handler_process(process.pid, 2)
        assert new_child != child
        answered(url, emulator)
    finally:
        stop(process)


def test_sigterm_stops_every_worker_and_the_handler_process(emulator):
    _, process = serve(emulator, 2)
    _, child = handler_process(process.pid, 2)
    pids = [*children(process.pid), child]
    output = stop(process)

    assert process.returncode == 0, output
    wait_until(lambda: all(gone(pid) for pid in pids))


def test_handler_process_0_keeps_the_threads_in_the_worker(emulator):
    url, process = serve(emulator, 1, HANDLER_PROCESS="0")
    try:
        answered(url, emulator)
        [worker] = children(process.pid)
        assert children(worker) == []
    finally:
        stop(process)


def test_a_worker_killed_outright_takes_its_handler_process_with_it_and_another_takes_over(emulator):
    url, process = serve(emulator, 2)
    try:
        worker, child = handler_process(process.pid, 2)
        os.kill(worker, signal.SIGKILL)

        wait_until(lambda: gone(child))
        _, new_child = handler_process(process.pid, 2)
        assert new_child != child
        answered(url, emulator)
    finally:
        stop(process)

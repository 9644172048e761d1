"""Leases renewed while work runs, and only then."""

from __future__ import annotations

import logging
import time

from bots.inbox.heartbeat import Heartbeat


def test_a_lease_is_renewed_while_its_work_runs_and_not_after():
    beats: list[str] = []
    heartbeat = Heartbeat(every=0.05)

    with heartbeat.keep(lambda: beats.append("event 1")):
        time.sleep(0.3)
    renewed = len(beats)
    time.sleep(0.2)

    assert renewed >= 3
    assert len(beats) == renewed


def test_a_renewal_that_fails_is_logged_and_the_others_go_on(caplog):
    beats: list[str] = []
    heartbeat = Heartbeat(every=0.05)

    def lost() -> None:
        raise ConnectionError("redis went away")

    with caplog.at_level(logging.WARNING, logger="bots"), heartbeat.keep(lost), \
            heartbeat.keep(lambda: beats.append("kept")):
        time.sleep(0.3)

    assert len(beats) >= 3
    assert "could not renew a lease (ConnectionError)" in caplog.text

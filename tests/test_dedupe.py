"""Dedupe keys are remembered for their time-to-live and bounded in number."""

from __future__ import annotations

from bots.dedupe import MemoryDedupe


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_new_once_within_the_ttl_then_new_again_after_it():
    clock = Clock()
    dedupe = MemoryDedupe(ttl_seconds=36 * 3600, clock=clock)
    assert dedupe.first_time("mid:1")
    clock.now = 36 * 3600 - 1
    assert not dedupe.first_time("mid:1")
    clock.now = 36 * 3600 + 1
    assert dedupe.first_time("mid:1")


def test_the_oldest_keys_go_first_past_the_bound():
    dedupe = MemoryDedupe(max_keys=3)
    for key in "abcd":
        assert dedupe.first_time(key)
    assert len(dedupe) == 3
    assert dedupe.first_time("a")
    assert not dedupe.first_time("d")

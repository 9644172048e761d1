"""Smoke test of ``make bench``'s accounting: the in-process whole-path round on a few deliveries waits
for every handler, and its exactly-once check names a delivery whose handler run went missing; a
figure is read from pairs of adjacent loads; the latency line says which replies were slow and when.
No timing is asserted: figures are for the benchmark to print, not for tests to judge."""

from __future__ import annotations

import os

import pytest

from bench import accounting, inprocess, latency, payloads
from bench.counting_bot import Runs, runs

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize("inbox", ["memory", "sqlite"])
def test_the_whole_path_round_waits_for_every_handler_and_names_a_missing_run(inbox, tmp_path):
    app = inprocess.real_app(inbox, tmp_path / inbox, whole=True)
    served = inprocess.Served(f"{inbox}, whole path", app, whole=True, inbox=inbox)
    try:
        complete = inprocess.run_round(served, payloads.distinct(30), timeout=10)
        deliveries = payloads.distinct(20)
        dropped = deliveries[7].mids[0]
        runs.drop.add(dropped)  # the handler runs for it, but the run is not recorded
        short = inprocess.run_round(served, deliveries, timeout=1)
    finally:
        runs.drop.clear()
        inprocess.close(app)

    assert complete.problem is None, complete.problem
    assert complete.tally.ok and complete.tally.handled == complete.tally.ran == 30
    assert complete.cpu > 0
    assert short.tally.missing == [dropped] and not short.tally.ok
    assert "ran for 19 of 20 deliveries" in short.problem and dropped in short.problem


def test_the_tally_names_missing_repeated_and_unknown_runs():
    sent = ["m_1", "m_2", "m_3"]
    assert accounting.tally(sent, ["m_3", "m_1", "m_2"]).ok
    assert accounting.tally(sent, ["m_1", "m_3"], accepted=2).ok  # one refused with 503: not run, as it should

    wrong = accounting.tally(sent, ["m_1", "m_2", "m_2", "m_9"])

    assert not wrong.ok
    assert (wrong.missing, wrong.duplicated, wrong.unknown) == (["m_3"], {"m_2": 2}, ["m_9"])
    assert all(mid in wrong.describe() for mid in ("m_3", "m_2 x2", "m_9"))


def test_runs_recorded_by_other_processes_are_read_from_their_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RUNS_DIR", str(tmp_path))
    recorder = Runs()  # as in a gunicorn worker or a Celery pool process: one file per process
    files = accounting.RunFiles(tmp_path)
    recorder.record("m_old")
    files.mark()

    recorder.record("m_1")
    (tmp_path / "other.runs").write_bytes(b"m_2\nm_3")  # another process, its last line still being written
    assert files.poll() == 2
    with (tmp_path / "other.runs").open("ab") as out:
        out.write(b"\n")

    assert files.poll() == 3
    assert sorted(files.mids) == ["m_1", "m_2", "m_3"]
    assert files.last_write > 0
    assert accounting.tree_cpu([os.getpid()]) > 0


def test_the_latency_line_says_which_replies_were_over_the_target_and_when_they_were_sent():
    values = [4.0] * 97 + [25.0, 400.0, 31.0]
    sent_at = [n / 100 for n in range(100)]
    row = latency.percentiles("reply", values, sent_at=sent_at)
    assert row.slow == "3 over 20 ms, the longest 400 ms, sent 0.97-0.99 s into the run"
    assert row.slow in row.line()
    assert latency.percentiles("reply", [4.0] * 100, sent_at=sent_at).slow == ""


def test_a_figure_is_the_median_of_its_pairs_with_the_floor_load_just_before():
    from bench.throughput import Answered, App, Load, Measured

    def load(rate: float) -> Load:
        return Load("x", 100, Answered(100, 0, 0, 0.0, 1.0), int(rate), 1.0, 0.01)

    app = Measured(App("SQLite, whole path", "m", whole=True, inbox="sqlite"), 1)
    for floor, mine in [(1000, 700), (500, 450), (2000, 1900)]:  # the host's speed differs from pair to pair
        app.pairs.append((load(floor), load(mine)))
        app.loads.append(app.pairs[-1][1])
    assert app.shares == [0.7, 0.9, 0.95]
    assert app.share == 0.9  # a median of the app's loads over the floor's would give 700 / 1000

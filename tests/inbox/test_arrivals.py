"""The arrivals log: an append is in the file when it returns, records are read back in order, a torn
tail is waited on while its writer lives and parked once it is gone, and every process's logs are read
by any process's journal, then removed."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from bots.deliveries import Deliveries
from bots.inbox.arrivals import HEADER, PARSED_MAX, Arrivals, Record, Torn, read
from bots.inbox.journal import Finished

BUILD = Deliveries()


def delivery(text: str, sender: str = "100071") -> bytes:
    return json.dumps(BUILD.message(text, sender=sender)).encode()


def record(bot: str, body: bytes, received_at: float = 1.0, crc: int | None = None) -> bytes:
    """One record's bytes as the log holds them (with a wrong ``crc`` when given)."""
    payload = bot.encode() + b"\n" + body
    return HEADER.pack(len(payload), zlib.crc32(payload) if crc is None else crc, received_at) + payload


def add_bytes(path: Path, data: bytes) -> None:
    with path.open("ab") as log:
        log.write(data)


def read_all(path: Path, chunk: int) -> list[Record]:
    """Every record of ``path``, read as the journal does: from where the last read stopped."""
    records, offset = [], 0
    while found := [r for r in read(path, offset, 10, chunk) if isinstance(r, Record)]:
        records += found
        offset = found[-1].end
    return records


def texts(jobs) -> list[str]:
    return [job.item.data["message"]["text"] for job in jobs]


def written_by_another_process(folder: Path, *bodies: bytes) -> Path:
    """The log a separate process wrote ``bodies`` to before it exited."""
    script = textwrap.dedent("""
        import sys
        from bots.inbox.arrivals import Arrivals
        arrivals = Arrivals(sys.argv[1])
        for body in sys.stdin.buffer.read().splitlines():
            arrivals.append("demo", body, 1000.0)  # the journal's clock
        print(arrivals.path)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(folder)], input=b"\n".join(bodies),
                          capture_output=True, check=True, cwd=Path(__file__).parents[2])
    return Path(done.stdout.decode().strip())


# The log itself


def test_an_append_is_readable_by_another_reader_as_soon_as_it_returns(tmp_path):
    arrivals = Arrivals(tmp_path)
    arrivals.append("echo", b'{"object": "page"}', 5.0)

    size = arrivals.path.stat().st_size
    assert list(read(arrivals.path, 0, 10)) == [Record("echo", b'{"object": "page"}', 5.0, size)]


def test_parsed_items_kept_in_memory_are_bounded_and_the_newest_stay(tmp_path):
    """The items a request parsed wait in memory for a worker, but never more than ``PARSED_MAX``: the oldest
    go first (a worker parses those again), the ones about to be read back stay."""
    log = Arrivals(tmp_path)
    for n in range(PARSED_MAX * 3 + 1):
        log.append("helpdesk", b"{}", parsed=[f"item {n}"])  # type: ignore[list-item]
    kept = [items[0] for items in log.parsed.values()]
    assert len(kept) <= PARSED_MAX
    assert kept[-1] == f"item {PARSED_MAX * 3}" and len(kept) >= PARSED_MAX // 2


def test_records_are_read_in_order_from_an_offset(tmp_path):
    arrivals = Arrivals(tmp_path)
    for n in range(5):
        arrivals.append("echo", f"body {n}".encode(), float(n + 1))

    everything = list(read(arrivals.path, 0, 10))
    assert [r.body for r in everything] == [f"body {n}".encode() for n in range(5)]
    assert [r.received_at for r in everything] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert list(read(arrivals.path, everything[1].end, 2)) == everything[2:4]
    assert list(read(arrivals.path, everything[-1].end, 10)) == []


def test_a_record_longer_than_a_read_chunk_is_read_whole(tmp_path):
    arrivals = Arrivals(tmp_path)
    arrivals.append("echo", b"x" * 5000)
    arrivals.append("echo", b"after")

    assert [r.body for r in read_all(arrivals.path, chunk=1024)] == [b"x" * 5000, b"after"]


def test_half_a_record_at_the_end_is_torn(tmp_path):
    arrivals = Arrivals(tmp_path)
    arrivals.append("echo", b"whole")
    whole = arrivals.path.stat().st_size
    add_bytes(arrivals.path, record("echo", b"cut short")[:20])

    [first, torn] = read(arrivals.path, 0, 10)
    assert (first.body, first.end, torn) == (b"whole", whole, Torn(whole))
    add_bytes(arrivals.path, record("echo", b"cut short")[20:])  # its writer finished it
    assert [r.body for r in read(arrivals.path, whole, 10)] == [b"cut short"]


def test_a_record_whose_crc_does_not_match_is_torn(tmp_path):
    arrivals = Arrivals(tmp_path)
    arrivals.append("echo", b"whole")
    whole = arrivals.path.stat().st_size
    add_bytes(arrivals.path, record("echo", b"garbled", crc=12345))

    assert list(read(arrivals.path, whole, 10)) == [Torn(whole)]


def test_a_log_is_rotated_at_segment_bytes_and_read_oldest_segment_first(tmp_path):
    arrivals = Arrivals(tmp_path, segment_bytes=100)
    for n in range(5):
        arrivals.append("echo", f"{n}".encode() * 40)

    files = arrivals.files()  # a record of 61 bytes: the third would start past the 100th byte
    assert [len(list(read(path, 0, 10))) for path in files] == [2, 2, 1] and files[-1] == arrivals.path
    assert [r.body[:1] for path in files for r in read(path, 0, 10)] == [b"0", b"1", b"2", b"3", b"4"]


# The journal reading logs


def test_a_torn_tail_is_waited_on_while_its_writer_may_still_finish_it(journal):
    journal.append("demo", delivery("whole"))
    log = journal.arrivals.path
    late = record("demo", delivery("late"), 1000.0)
    add_bytes(log, late[:30])  # this process is writing it

    [whole] = journal.take("w", 10)
    assert texts([whole]) == ["whole"]
    assert journal.dead_letters() == []
    journal.finish([Finished(whole)])
    add_bytes(log, late[30:])
    assert texts(journal.take("w", 10)) == ["late"]


def test_a_torn_tail_whose_writer_is_gone_is_parked_and_read_past(journal):
    log = written_by_another_process(journal.arrivals.folder, delivery("before the crash"))
    add_bytes(log, record("demo", delivery("cut short"))[:30])

    [before] = journal.take("w", 10)
    assert texts([before]) == ["before the crash"]
    [letter] = journal.dead_letters()
    assert letter["what"] == "an unreadable delivery" and "not a whole record" in letter["error"]
    assert log.exists()  # "before the crash" runs from its record there: kept until it is done
    journal.finish([Finished(before)])
    journal.promote()
    assert not log.exists()  # read to its end, its writer gone, nothing running from it: removed
    journal.append("demo", delivery("after", sender="100072"))
    assert texts(journal.take("w", 10)) == ["after"]


def test_a_garbled_record_whose_writer_is_gone_is_parked(journal):
    log = written_by_another_process(journal.arrivals.folder, delivery("fine"))
    add_bytes(log, record("demo", delivery("garbled"), crc=1))

    assert texts(journal.take("w", 10)) == ["fine"]
    assert len(journal.dead_letters()) == 1
    assert journal.take("w", 10) == []


def test_a_delivery_the_disk_took_half_of_does_not_hold_up_the_ones_after_it(journal, monkeypatch):
    """A full disk may take part of a record and refuse the rest: that delivery is answered 503 (Meta sends it
    again), and the next ones, answered 200 once there is room, must not wait behind its bytes."""
    write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        monkeypatch.setattr("bots.inbox.arrivals.os.write", full)
        return write(fd, data[:len(data) // 2])

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    journal.append("demo", delivery("before"))
    monkeypatch.setattr("bots.inbox.arrivals.os.write", half_then_full)
    with pytest.raises(OSError):
        journal.append("demo", delivery("refused", sender="100072"))
    monkeypatch.setattr("bots.inbox.arrivals.os.write", write)
    journal.append("demo", delivery("after", sender="100073"))

    assert sorted(texts(journal.take("w", 10))) == ["after", "before"]


def test_another_processs_log_is_read_in_order_and_removed_once_read(journal):
    log = written_by_another_process(journal.arrivals.folder, delivery("1"), delivery("2"))
    assert log.parent == journal.arrivals.folder and log.exists()

    assert journal.counts()["events"] == 2
    [first] = journal.take("w", 10)
    assert texts([first]) == ["1"]  # "2" waits for it in the events table
    assert log.exists()  # "1" runs from its record there
    journal.finish([Finished(first)])
    assert texts(journal.take("w", 10)) == ["2"]
    journal.promote()
    assert not log.exists()


def test_a_log_is_removed_only_once_it_is_read_to_its_end(journal):
    log = written_by_another_process(journal.arrivals.folder, *(delivery(f"{n}", sender=f"{n}") for n in range(600)))

    assert journal.promote() == 500  # a promotion reads at most 500 records
    assert log.exists()
    assert journal.promote() == 100
    assert not log.exists()


def test_a_forked_process_writes_a_log_of_its_own_that_the_parent_reads(journal):
    parent, child_body = delivery("parent"), delivery("child", sender="100072")
    journal.append("demo", parent)
    parents = journal.arrivals.path
    child = os.fork()
    if child == 0:
        try:
            journal.append("demo", child_body)
        finally:
            os._exit(0)
    os.waitpid(child, 0)

    logs = journal.arrivals.files()
    assert len(logs) == 2 and parents in logs
    assert [r.body for r in read(parents, 0, 10)] == [parent]
    jobs = journal.take("w", 10)
    assert sorted(texts(jobs)) == ["child", "parent"]
    journal.finish([Finished(job) for job in jobs])
    journal.promote()
    assert journal.arrivals.files() == [parents]  # the child's log is read, its writer gone, nothing runs from it


def test_a_rotated_log_read_to_its_end_is_removed_and_the_current_one_stays(journal):
    journal.arrivals.segment_bytes = 1
    journal.append("demo", delivery("1"))
    journal.append("demo", delivery("2"))
    first, current = journal.arrivals.files()

    assert journal.promote() == 2
    assert not first.exists() and current.exists()
    assert journal.arrivals.files() == [current]

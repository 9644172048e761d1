"""Live pages over real HTTP on loopback: what the Server-Sent Events streams push, to whom, how fast,
and what bounds them (emulator/live.py)."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import pytest
import requests
from emulator_helpers import ALEX, DANA, IT_HELP, SECRET, TOKEN, person
from werkzeug.serving import make_server

from bots.graph import GraphClient, RetryPolicy
from emulator.live import RESYNC, Event, Hub

Arrival = tuple[str, Any, float]
JORDAN = "100071234567894"  # the seeded Administrator


class Stream:
    """A browser's EventSource, read in a thread: each event, retry hint and heartbeat with when it came."""

    def __init__(self, session: requests.Session, url: str) -> None:
        self.response = session.get(url, stream=True, timeout=5)
        self.response.encoding = "utf-8"
        self.arrivals: queue.Queue[Arrival] = queue.Queue()
        if self.response.status_code == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        kind, data = "message", ""
        try:
            for line in self.response.iter_lines(chunk_size=1, decode_unicode=True):
                if line.startswith("event:"):
                    kind = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data = line.removeprefix("data:").strip()
                elif line.startswith("retry:"):
                    self.arrivals.put(("retry", int(line.removeprefix("retry:")), time.perf_counter()))
                elif line.startswith(":"):
                    self.arrivals.put(("heartbeat", None, time.perf_counter()))
                elif not line and data:
                    self.arrivals.put((kind, json.loads(data), time.perf_counter()))
                    kind, data = "message", ""
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed under the reader
        self.arrivals.put(("end", None, time.perf_counter()))

    def next(self, *kinds: str, timeout: float = 3.0) -> Arrival:
        """The next arrival of one of ``kinds``, skipping others; fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            arrival = self.arrivals.get(timeout=max(0.0, deadline - time.monotonic()))
            if arrival[0] in kinds:
                return arrival

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def hub(emulator) -> Hub:
    """The emulator's hub with a short heartbeat; closed after the test, which ends its streams."""
    live = emulator.state.live
    live.heartbeat = 0.1
    yield live
    emulator.state.close()


@pytest.fixture
def streams():
    opened: list[Stream] = []

    def open_stream(session: requests.Session, url: str) -> Stream:
        opened.append(Stream(session, url))
        return opened[-1]
    yield open_stream
    for stream in opened:
        stream.close()


def bot_graph(emulator) -> GraphClient:
    return GraphClient(emulator.url, TOKEN, SECRET, proof="timed", retry=RetryPolicy(attempts=1))


def dana_thread(emulator) -> str:
    helpdesk = emulator.state.integrations.by_name("helpdesk")
    return emulator.state.community.direct_thread(DANA, helpdesk.page_id)[0]["id"]


def subscribed(stream: Stream) -> Stream:
    assert stream.response.status_code == 200, stream.response.text
    assert stream.next("retry")[1] == 1000
    return stream


def wait_for(condition, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)


def test_a_bots_message_is_pushed_to_the_open_chat_and_the_chat_list_within_200_ms(emulator, hub, streams):
    thread = dana_thread(emulator)
    stream = subscribed(streams(person(emulator), f"{emulator.url}/work/api/stream?thread={thread}&chats=1"))
    for _ in range(5):
        started = time.perf_counter()
        bot_graph(emulator).post("me/messages", {"recipient": {"id": DANA}, "message": {"text": "pushed"}})
        _, data, arrived = stream.next("thread")
        assert data == {"id": thread, "change": "message"} and arrived - started < 0.2
        assert stream.next("chats")[0] == "chats"


def test_typing_is_pushed_with_who_types_before_the_message_that_follows_at_once(emulator, hub, streams):
    thread = dana_thread(emulator)
    stream = subscribed(streams(person(emulator), f"{emulator.url}/work/api/stream?thread={thread}"))
    graph = bot_graph(emulator)
    graph.post("me/messages", {"recipient": {"id": DANA}, "sender_action": "typing_on"})
    graph.post("me/messages", {"recipient": {"id": DANA}, "message": {"text": "typed"}})
    graph.post("me/messages", {"recipient": {"id": DANA}, "sender_action": "typing_off"})
    changes = [stream.next("thread")[1] for _ in range(3)]
    assert changes == [{"id": thread, "change": "typing", "typing": "helpdesk", "seconds": 20},
                       {"id": thread, "change": "message"},
                       {"id": thread, "change": "typing", "typing": None, "seconds": 20}]


def test_a_mark_seen_and_a_rename_are_pushed(emulator, hub, streams):
    opened = bot_graph(emulator).post("me/messages", {"recipient": {"ids": [DANA, ALEX]}, "message": {"text": "hi"}})
    key = opened["thread_key"]
    stream = subscribed(streams(person(emulator, ALEX), f"{emulator.url}/work/api/stream?thread={key}&chats=1"))
    bot_graph(emulator).post("me/messages", {"recipient": {"thread_key": key}, "sender_action": "mark_seen"})
    assert stream.next("thread")[1] == {"id": key, "change": "seen"}
    bot_graph(emulator).post(f"{key}/threadname", {"name": "Incident 7"})
    assert stream.next("thread")[1] == {"id": key, "change": "thread"}
    assert stream.next("chats")[0] == "chats"


def test_a_persons_message_reaches_the_other_members_chat_list(emulator, hub, streams):
    opened = bot_graph(emulator).post("me/messages", {"recipient": {"ids": [DANA, ALEX]}, "message": {"text": "hi"}})
    alex = subscribed(streams(person(emulator, ALEX), f"{emulator.url}/work/api/stream?chats=1"))
    person(emulator).post(f"{emulator.url}/work/api/threads/{opened['thread_key']}/messages", json={"text": "hello"})
    assert alex.next("chats")[0] == "chats"


def test_a_post_and_a_comment_are_pushed_to_the_groups_feed(emulator, hub, streams):
    stream = subscribed(streams(person(emulator), f"{emulator.url}/work/api/stream?group={IT_HELP}"))
    session = person(emulator, ALEX)
    post = session.post(f"{emulator.url}/work/api/groups/{IT_HELP}/posts", json={"message": "news"}).json()
    assert stream.next("group")[1] == {"id": IT_HELP}
    session.post(f"{emulator.url}/work/api/items/{post['id']}/comments", json={"message": "more"})
    assert stream.next("group")[1] == {"id": IT_HELP}


def test_the_admin_panel_hears_of_each_graph_call_and_delivery(emulator, hub, streams):
    helpdesk = emulator.state.integrations.by_name("helpdesk")
    url = f"{emulator.url}/admin/integrations/{helpdesk.id}/live/stream"
    stream = subscribed(streams(person(emulator, JORDAN), url))
    bot_graph(emulator).get("me")
    assert stream.next("admin")[1] == {"id": helpdesk.id}
    person(emulator).post(f"{emulator.url}/work/api/threads/{dana_thread(emulator)}/messages", json={"text": "hi"})
    assert emulator.state.courier.wait_idle()
    assert [stream.next("admin")[1] for _ in range(2)] == [{"id": helpdesk.id}] * 2  # sending, then delivered


def test_a_stream_needs_a_viewer_who_takes_part(emulator, hub, streams):
    thread = dana_thread(emulator)
    url = f"{emulator.url}/work/api/stream"
    assert requests.get(f"{url}?thread={thread}", timeout=5).status_code == 401
    assert person(emulator, ALEX).get(f"{url}?thread={thread}", timeout=5).status_code == 404
    assert person(emulator).get(f"{url}?group=404", timeout=5).status_code == 404
    assert person(emulator).get(url, timeout=5).status_code == 400
    admin = f"{emulator.url}/admin/integrations/{emulator.state.integrations.by_name('helpdesk').id}/live/stream"
    assert requests.get(admin, timeout=5).status_code == 401
    assert person(emulator).get(admin, timeout=5).status_code == 403
    nobody = f"{emulator.url}/admin/integrations/404/live/stream"
    assert person(emulator, JORDAN).get(nobody, timeout=5).status_code == 404
    assert hub.count() == 0


def test_streams_past_the_limit_are_refused_and_a_closed_one_frees_its_place(emulator, hub, streams):
    hub.max_subscribers = 2
    url = f"{emulator.url}/work/api/stream?chats=1"
    first, _ = subscribed(streams(person(emulator), url)), subscribed(streams(person(emulator), url))
    refused = requests.get(url, cookies=person(emulator).cookies, timeout=5)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    first.close()
    wait_for(lambda: hub.count() == 1)  # the next heartbeat's write fails
    subscribed(streams(person(emulator), url))


def test_a_stream_that_takes_nothing_never_slows_a_graph_call_and_is_told_to_resync(emulator, hub, streams):
    thread = dana_thread(emulator)
    stream = subscribed(streams(person(emulator), f"{emulator.url}/work/api/stream?thread={thread}"))
    subscriber = next(iter(hub._subscribers))
    stuck, take = threading.Event(), subscriber.take
    subscriber.take = lambda timeout: stuck.wait() and take(timeout)  # its writer stops taking events
    time.sleep(3 * hub.heartbeat)
    for _ in range(hub.max_queued * 3):
        hub.thread(thread, "message")
    started = time.perf_counter()
    bot_graph(emulator).post("me/messages", {"recipient": {"id": DANA}, "message": {"text": "not held up"}})
    assert time.perf_counter() - started < 0.2
    stuck.set()
    assert stream.next("resync", "thread")[0] == "resync"


def test_a_full_queue_keeps_one_resync_instead_of_the_events():
    hub = Hub(max_queued=3)
    subscriber = hub.subscribe(["thread:t_1"])
    for _ in range(4):
        hub.thread("t_1", "message")
    assert [subscriber.take(0), subscriber.take(0)] == [RESYNC, None]
    hub.thread("t_1", "seen")
    assert subscriber.take(0) == Event("thread", {"id": "t_1", "change": "seen"})


def test_stopping_the_server_waits_for_no_stream_and_closing_ends_them(emulator, streams):
    server = make_server("127.0.0.1", 0, emulator, threaded=True)  # as python -m emulator serves it
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/work/api/stream?chats=1"
    stream = subscribed(streams(person(emulator), url))  # its heartbeat is 15 s away
    started = time.perf_counter()
    server.shutdown()
    server.server_close()
    emulator.state.close()
    assert stream.next("end", timeout=1)[0] == "end" and time.perf_counter() - started < 1
    assert emulator.state.live.count() == 0
    refused = person(emulator).get(f"{emulator.url}/work/api/stream?chats=1", timeout=5)
    assert refused.status_code == 503 and refused.json()["error"]["message"] == "the emulator is stopping"

"""Live pages: an in-process publish/subscribe hub, and the Server-Sent Events streams that push
what it publishes to Work Chat, the groups and the Admin Panel, so no page polls.

An event says what changed, not the new state: ``thread`` (a chat's messages, name, participants,
seen mark or typing), ``chats`` (a person's chat list), ``group`` (a group's feed) and ``admin``
(an integration's Last API request and delivery log). The page fetches the current state once
through the JSON API when its stream opens (subscribing comes first, so nothing published in
between is lost) and when told ``resync``, then fetches again what each event names. Typing is
the one state an event carries (who types, for how long): a bot's ``typing_on`` is often replaced
by its message milliseconds later, before any fetch could see it; the page keeps the indicator
up for at least a second (static/app.js, TYPING_MIN_MS) so a person sees it.

Publishing never waits for a browser: a subscriber's queue holds at most ``max_queued`` events,
and one that falls that far behind has them replaced by a single ``resync``. A hub serves at most
``max_subscribers`` streams (more are answered 503 with ``Retry-After``). The werkzeug threaded
server holds a thread per stream: each stream writes a heartbeat comment every ``heartbeat``
seconds, so a closed connection fails a write and is unsubscribed, and :meth:`Hub.close` ends
every stream at once.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, jsonify, request, session
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from .app import Emulator

HEARTBEAT_SECONDS = 15.0
RETRY_MS = 1000
MAX_SUBSCRIBERS = 64
MAX_QUEUED = 100
TYPING_SECONDS = 20


def thread_topic(thread_id: str) -> str:
    return f"thread:{thread_id}"


def chats_topic(person_id: str) -> str:
    return f"chats:{person_id}"


def group_topic(group_id: str) -> str:
    return f"group:{group_id}"


def admin_topic(integration_id: str) -> str:
    return f"admin:{integration_id}"


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: its name and its JSON data."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The event as it goes on the wire."""
        return f"event: {self.kind}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


RESYNC = Event("resync")


class Subscriber:
    """One stream's topics and its bounded queue of events not yet written."""

    def __init__(self, topics: frozenset[str], limit: int) -> None:
        self.topics = topics
        self.limit = limit
        self.closed = False
        self._events: deque[Event] = deque()
        self._ready = threading.Condition()

    def offer(self, event: Event) -> None:
        """Queue ``event`` without waiting; a full queue is replaced by one ``resync``."""
        with self._ready:
            if len(self._events) >= self.limit:
                self._events.clear()
                event = RESYNC
            self._events.append(event)
            self._ready.notify()

    def take(self, timeout: float) -> Event | None:
        """The next event, or None when ``timeout`` seconds pass first or the stream is closed."""
        with self._ready:
            if not self._events and not self.closed:
                self._ready.wait(timeout)
            return self._events.popleft() if self._events and not self.closed else None

    def close(self) -> None:
        """End the stream: its writer stops at its next wake-up, which this causes."""
        with self._ready:
            self.closed = True
            self._ready.notify()


class Full(Exception):
    """The hub serves as many streams as it may, or is closed."""


class Hub:
    """Topics and their subscribers, in this process; the stores publish, the streams subscribe."""

    def __init__(self, max_subscribers: int = MAX_SUBSCRIBERS, max_queued: int = MAX_QUEUED,
                 heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.max_subscribers = max_subscribers
        self.max_queued = max_queued
        self.heartbeat = heartbeat
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._closed = False

    def subscribe(self, topics: Iterable[str]) -> Subscriber:
        """A new subscriber to ``topics``; raises :class:`Full` past the limit or after :meth:`close`."""
        with self._lock:
            if self._closed:
                raise Full("the emulator is stopping")
            if len(self._subscribers) >= self.max_subscribers:
                raise Full(f"{len(self._subscribers)} live streams are open (at most {self.max_subscribers})")
            subscriber = Subscriber(frozenset(topics), self.max_queued)
            self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget ``subscriber`` (again is harmless)."""
        subscriber.close()
        with self._lock:
            self._subscribers.discard(subscriber)

    def count(self) -> int:
        """How many streams are subscribed."""
        with self._lock:
            return len(self._subscribers)

    def publish(self, topic: str, event: Event) -> None:
        """Queue ``event`` for every subscriber to ``topic``; never waits for one."""
        with self._lock:
            found = [s for s in self._subscribers if topic in s.topics]
        for subscriber in found:
            subscriber.offer(event)

    def close(self) -> None:
        """End every stream and refuse new ones (the server is stopping)."""
        with self._lock:
            self._closed = True
            found, self._subscribers = self._subscribers, set()
        for subscriber in found:
            subscriber.close()

    # what the stores publish ------------------------------------------------------------------
    def thread(self, thread_id: str, change: str, members: Iterable[str] = ()) -> None:
        """A thread's ``message``, ``seen`` or ``thread`` (name, participants) changed; ``members``' chat
        lists change with it."""
        self.publish(thread_topic(thread_id), Event("thread", {"id": thread_id, "change": change}))
        self.chats(members)

    def typing(self, thread_id: str, who: str | None) -> None:
        """``who`` started typing in a thread (None: stopped)."""
        self.publish(thread_topic(thread_id), Event("thread", {"id": thread_id, "change": "typing", "typing": who,
                                                               "seconds": TYPING_SECONDS}))

    def chats(self, members: Iterable[str]) -> None:
        """These people's chat lists changed."""
        for member in dict.fromkeys(members):
            self.publish(chats_topic(member), Event("chats"))

    def group(self, group_id: str) -> None:
        """A group's feed changed (a post, comment or like)."""
        self.publish(group_topic(group_id), Event("group", {"id": group_id}))

    def admin(self, integration_id: str) -> None:
        """An integration's Last API request or delivery log changed."""
        self.publish(admin_topic(integration_id), Event("admin", {"id": integration_id}))

    def stream(self, subscriber: Subscriber) -> Response:
        """The Server-Sent Events response that writes ``subscriber``'s events until either side closes."""
        response = Response(self._write(subscriber), mimetype="text/event-stream",
                            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        response.call_on_close(lambda: self.unsubscribe(subscriber))
        return response

    def _write(self, subscriber: Subscriber) -> Iterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()  # the first write sends the headers: the page's "open"
        while not subscriber.closed:
            event = subscriber.take(self.heartbeat)
            if event is not None:
                yield event.encode()
            elif not subscriber.closed:
                yield b": heartbeat\n\n"


# the streams -----------------------------------------------------------------------------------
def blueprint() -> Blueprint:
    bp = Blueprint("live", __name__)
    bp.add_url_rule("/work/api/stream", view_func=people_stream, methods=["GET"])
    bp.add_url_rule("/admin/integrations/<integration_id>/live/stream", view_func=admin_stream, methods=["GET"])
    return bp


def _emulator() -> Emulator:
    from .calls import state  # calls imports integrations, which imports this module

    return state()


def _viewer() -> dict[str, Any]:
    """The person the session acts as; 401 when nobody is picked (the JSON API answers the same)."""
    person_id = session.get("viewer")
    person = _emulator().community.person(person_id) if person_id else None
    if person is None:
        abort(_refusal("Pick who you are first (the home page).", 401))
    return person


def people_stream() -> Response:
    """``?thread=`` (a chat the viewer takes part in), ``&group=``, ``&chats=1`` (the viewer's chat list):
    the people's side's live events, for the viewer in the session (401 without one, 404 for a chat
    that is not theirs or a group that does not exist)."""
    emulator = _emulator()
    person_id = _viewer()["id"]
    topics = [chats_topic(person_id)] if request.args.get("chats") == "1" else []
    if thread_id := request.args.get("thread"):
        thread = emulator.community.thread(thread_id)
        if thread is None or person_id not in thread["participants"]:
            abort(_refusal("No such chat.", 404))
        topics.append(thread_topic(thread_id))
    if group_id := request.args.get("group"):
        if emulator.community.group(group_id) is None:
            abort(_refusal("No such group.", 404))
        topics.append(group_topic(group_id))
    if not topics:
        abort(_refusal("Name a thread, a group or chats=1.", 400))
    return _subscribed(emulator.live, topics)


def admin_stream(integration_id: str) -> Response:
    """An integration's Admin Panel activity (Last API request, delivery log), for whom the Admin Panel
    lets in (401 for nobody, 403 for a person who may not configure integrations); 404 for no such one."""
    from .community import CONFIGURE_INTEGRATIONS, may  # community imports this module

    emulator = _emulator()
    if not may(_viewer(), CONFIGURE_INTEGRATIONS):
        abort(_refusal("The Admin Panel is for Administrators who may configure integrations.", 403))
    if emulator.integrations.get(integration_id) is None:
        abort(_refusal("No such integration.", 404))
    return _subscribed(emulator.live, [admin_topic(integration_id)])


def _subscribed(hub: Hub, topics: list[str]) -> Response:
    try:
        subscriber = hub.subscribe(topics)
    except Full as full:
        refusal = _refusal(str(full), 503)
        refusal.headers["Retry-After"] = "5"
        return refusal
    return hub.stream(subscriber)


def _refusal(message: str, status: int) -> Response:
    answer = jsonify({"error": {"message": message}})
    answer.status_code = status
    return answer

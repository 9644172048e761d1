"""Prometheus metrics: what the framework counts, the small functions that count it, and the exposition.

Every series is named ``bots_...``; its labels are bounded (bot names this app serves, a fixed set of
event kinds and outcomes, Graph endpoints with their ids taken out) and never carry message text or a
token. The framework calls the functions below on its paths; each looks a label child up once and
keeps it, so a count costs a dict lookup and an increment, and no lock is held across I/O.

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` names a directory before ``prometheus_client`` is
first imported (``gunicorn.conf.py`` sees to it under gunicorn), every process (each gunicorn worker,
each Celery worker on the machine) writes its figures to files there, and a scrape of any one of them
adds up all of them. The inbox's backlog is read at scrape time from the inbox itself, which every
process shares (SQLite file or Redis).

No Flask here: the route is in :mod:`bots.flask.metrics`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .bot import TOPICS
from .envelope import KNOWN_CHANGES, MESSAGING_KINDS, Item

if TYPE_CHECKING:
    from .inbox import Inbox

logger = logging.getLogger("bots")

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)  # a missing one would fail the first count

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
UNKNOWN = "unknown"
#: Distinct Graph endpoint templates kept as labels; any further one is counted as ``other``.
MAX_ENDPOINTS = 100

DELIVERIES = Counter("bots_deliveries", "Webhook deliveries (POSTs) answered, by bot and HTTP status.",
                     ["bot", "status"])
EVENTS = Counter("bots_events", "Events settled, by bot, kind (topic/field) and outcome: handled, unmatched, "
                 "ignored, duplicate, invalid, failed, retried, dead, lost.", ["bot", "kind", "outcome"])
HANDLER_SECONDS = Histogram("bots_handler_seconds", "Time a handler ran (middleware included), by bot and kind.",
                            ["bot", "kind"], buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
OUTBOX_SENDS = Counter("bots_outbox_sends", "Outbox effects tried, by bot and outcome: sent, retried, dead.",
                       ["bot", "outcome"])
GRAPH_CALLS = Counter("bots_graph_calls", "Graph API calls (each try), by bot, endpoint template, HTTP status "
                      "(or network) and Graph error code (or none).", ["bot", "endpoint", "status", "code"])
RETRIES = Counter("bots_retries", "Work given back to be tried again, by bot and what: event, message, graph.",
                  ["bot", "what"])
DEAD_LETTERS = Counter("bots_dead_letters", "Events and outbox messages parked as dead letters, by bot and what.",
                       ["bot", "what"])
PREVIEWS = Counter("bots_previews", "Link-preview answers, by bot and source: cache, resolver, budget (ran past "
                   "it), unregistered, collection.", ["bot", "source"])
PREVIEW_SECONDS = Histogram("bots_preview_seconds", "Time to answer a link-preview request, by bot and source.",
                            ["bot", "source"], buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2, 3, 5))


class Children:
    """The label children of one metric, each looked up once: ``children(*labels)`` is a dict lookup after
    the first time. A race makes the same lookup twice, which ``labels`` answers with the same child."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.found: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self.found.get(labels)
        if child is None:
            child = self.found[labels] = self.metric.labels(*labels)
        return child


_deliveries = Children(DELIVERIES)
_events = Children(EVENTS)
_handler_seconds = Children(HANDLER_SECONDS)
_sends = Children(OUTBOX_SENDS)
_graph = Children(GRAPH_CALLS)
_retries = Children(RETRIES)
_dead = Children(DEAD_LETTERS)
_previews = Children(PREVIEWS)
_preview_seconds = Children(PREVIEW_SECONDS)
_STATUSES = {status: str(status) for status in range(100, 600)}


def delivered(bot: str, status: int) -> None:
    """A delivery was answered ``status``; ``bot`` must be one this app serves (else pass :data:`UNKNOWN`)."""
    _deliveries(bot, _STATUSES.get(status, "other")).inc()


def event(bot: str, kind: str, outcome: str) -> None:
    """An event of ``kind`` (see :func:`kind_of`) was settled with ``outcome``."""
    _events(bot, kind, outcome).inc()


def repeats(bot: str, items: Sequence[Item], added: int) -> None:
    """Count the ``len(items) - added`` redeliveries a journal dropped when it stored ``items`` as ``duplicate``
    events: of the items' kind when they share one, else of kind ``unknown``."""
    if added >= len(items):
        return
    kinds = {kind_of(item) for item in items}
    _events(bot, kinds.pop() if len(kinds) == 1 else UNKNOWN, "duplicate").inc(len(items) - added)


def handler_ran(bot: str, kind: str, seconds: float) -> None:
    _handler_seconds(bot, kind).observe(seconds)


def outbox_send(bot: str, outcome: str) -> None:
    """One outbox effect was sent, given back to be retried, or parked (``dead``)."""
    _sends(bot, outcome).inc()


def retried(bot: str, what: str) -> None:
    _retries(bot, what).inc()


def dead_letter(bot: str, what: str) -> None:
    _dead(bot, what).inc()


def graph_call(bot: str, path: str, status: int | None, code: int | None) -> None:
    """One try of a Graph call to ``path``: its HTTP status (None: no answer) and Graph error code (None: none)."""
    _graph(bot, endpoint(path), "network" if status is None else _STATUSES.get(status, "other"),
           "none" if code is None else str(code)).inc()


def preview(bot: str, source: str, seconds: float) -> None:
    """A link-preview request was answered from ``source`` in ``seconds``."""
    _previews(bot, source).inc()
    _preview_seconds(bot, source).observe(seconds)


_CHANGES = frozenset(KNOWN_CHANGES)
_MESSAGING_FIELDS = (("message", "messages"), ("postback", "messaging_postbacks"),
                     ("delivery", "message_deliveries"), ("read", "message_reads"))


def kind_of(item: Item) -> str:
    """The event's kind as a label, ``topic/field`` (``page/messages``, ``group/comments``), from a fixed set:
    a topic or field this version does not model is ``other``, so a delivery cannot mint new series."""
    topic = item.object if item.object in TOPICS else "other"
    data = item.data if isinstance(item.data, dict) else {}
    if item.kind == "messaging":
        field = next((name for key, name in _MESSAGING_FIELDS if key in data), None) or \
            next((key for key in data if key in MESSAGING_KINDS), "messaging")
    else:
        named = data.get("field")
        field = named if isinstance(named, str) and (topic, named) in _CHANGES else "other"
    return f"{topic}/{field}"


_VERSION = re.compile(r"v\d+\.\d+")
_NAME = re.compile(r"[a-z][a-z_]{0,39}")
_endpoints: set[str] = set()


def endpoint(path: str) -> str:
    """A Graph path as a low-cardinality template: the version prefix dropped, every segment that is not a
    plain lower-case name (an id: ``123``, ``t_42``, ``123_456``) replaced by ``{id}``. ``me/messages`` is
    ``/me/messages``, ``1234/comments`` is ``/{id}/comments``; past :data:`MAX_ENDPOINTS` templates, ``other``."""
    segments = path.split("?", 1)[0].strip("/").split("/")
    if segments and _VERSION.fullmatch(segments[0]):
        segments = segments[1:]
    template = "/" + "/".join(part if _NAME.fullmatch(part) else "{id}" for part in segments)
    if template not in _endpoints:
        if len(_endpoints) >= MAX_ENDPOINTS:
            return "other"
        _endpoints.add(template)
    return template


class InboxCollector:
    """The inbox's backlog and how long its oldest due work has waited, read when Prometheus scrapes.

    The inbox is shared storage, so any process reads the same figures; one that cannot be read leaves
    the two gauges out of this scrape (and logs why) rather than failing it.
    """

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def collect(self) -> Iterator[Metric]:
        try:
            status = self.inbox.status()
        except Exception as error:
            logger.warning("metrics: could not read the inbox (%s); its gauges are left out", type(error).__name__)
            return
        yield GaugeMetricFamily("bots_inbox_pending", "Events and outbox messages waiting (dead letters not "
                                "counted).", value=status.pending)
        yield GaugeMetricFamily("bots_inbox_oldest_pending_seconds", "Seconds the longest-waiting due event or "
                                "message has waited (running ones included); 0 when none is due.",
                                value=status.waited or 0.0)


def exposition(inbox: Inbox) -> tuple[bytes, str]:
    """The text-format body of a scrape and its content type: every process's figures in multiprocess mode
    (this process's otherwise) and the inbox's gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    else:
        registry.register(REGISTRY)
    registry.register(InboxCollector(inbox))
    return generate_latest(registry), CONTENT_TYPE

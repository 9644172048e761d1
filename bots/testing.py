"""The test kit: build signed deliveries, post them through the app, run handlers inline, and
record every Graph call the bot makes, without a network. A handler test in three lines::

    tester = BotTester(bot)
    tester.message("help")
    assert tester.replies[-1].text == "What do you need?"

Graph calls go through a real ``requests.Session`` whose transport records them and answers like
the Send API, so the Bearer token, the appsecret_proof and the JSON bodies are the real ones.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import BaseAdapter
from werkzeug.test import TestResponse

from . import signature
from .bot import Bot
from .deliveries import COMMUNITY_ID, PAGE_ID, USER_ID, Deliveries, batch, envelope
from .envelope import Item
from .executor import InlineExecutor, Job
from .flask import make_app
from .router import Outcome

GRAPH_URL = "https://graph.test"

__all__ = ["BotTester", "Deliveries", "GraphCall", "GraphRecorder", "SentMessage", "batch", "envelope",
           "settings_for"]


@dataclass(frozen=True)
class GraphCall:
    """One call the bot made: method, path (``me/messages``), query parameters, JSON body, headers."""

    method: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class SentMessage:
    """A Send API message as the person would see it."""

    recipient: dict[str, Any]
    text: str | None
    quick_replies: list[dict[str, Any]]
    message: dict[str, Any]

    @property
    def quick_reply_titles(self) -> list[str]:
        # Quick replies are checked before they are sent, and a title is required of each.
        return cast("list[str]", [item.get("title") for item in self.quick_replies])


class GraphRecorder(BaseAdapter):
    """A ``requests`` transport that records each call and answers as the Graph API would.

    ``fail_next(...)`` makes the next call answer with a Graph error instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[GraphCall] = []
        self._failures: list[tuple[int, dict[str, Any]]] = []
        self._ids = itertools.count(1)

    def session(self) -> requests.Session:
        """A session whose every request comes here."""
        session = requests.Session()
        session.mount("http://", self)
        session.mount("https://", self)
        return session

    def fail_next(self, message: str = "Service temporarily unavailable", *, code: int = 2, status: int = 500,
                  subcode: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` calls with this Graph error (retryable codes are retried by the client)."""
        error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Atest"}
        if subcode is not None:
            error["error_subcode"] = subcode
        self._failures.extend([(status, {"error": error})] * times)

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float | None, float | None] | None = None, verify: bool | str = True,
             cert: str | tuple[str, str] | None = None, proxies: Mapping[str, str] | None = None) -> requests.Response:
        # A prepared request has its method and URL as strings, and the JSON body of a Graph call.
        assert request.method is not None and isinstance(request.url, str)
        parts = urlsplit(request.url)
        body = json.loads(cast("str | bytes", request.body)) if request.body else None
        call = GraphCall(request.method, parts.path.lstrip("/"), dict(parse_qsl(parts.query)), body,
                         cast("dict[str, str]", dict(request.headers)))
        self.calls.append(call)
        status, answer = self._failures.pop(0) if self._failures else (200, self._answer(call))
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(answer).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        return None

    def _answer(self, call: GraphCall) -> dict[str, Any]:
        n = next(self._ids)
        if call.path.endswith("messages"):
            recipient = (call.body or {}).get("recipient", {})
            answer = {"recipient_id": recipient.get("id") or recipient.get("thread_key"), "message_id": f"m_sent_{n}"}
            if recipient.get("ids"):
                answer["thread_key"] = f"t_{n}"
            return answer
        return {"id": f"{n}"}


class RecordingExecutor(InlineExecutor):
    """Runs jobs inline and keeps what became of each."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def submit(self, jobs: Sequence[Job]) -> bool:
        # The jobs a deployment submits are dispatcher runs, each answering its Outcome.
        self.outcomes.extend(cast(Outcome, job()) for _, job in jobs)
        return True


def settings_for(bot: Bot) -> dict[str, str]:
    """Settings a tester serves ``bot`` with: fixed, obviously fake credentials."""
    prefix = bot.name.upper()
    return {f"{prefix}_APP_SECRET": f"test-secret-{bot.name}", f"{prefix}_ACCESS_TOKEN": f"test-token-{bot.name}",
            f"{prefix}_VERIFY_TOKEN": f"test-verify-{bot.name}", f"{prefix}_APP_ID": "1234567890"}


class TestClock:
    """The durable inbox's clock in a test: it stands still until :meth:`BotTester.advance` moves it."""

    __test__ = False

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class BotTester:
    """Serves bots in an app of their own and drives them the way Workplace would.

    Handlers run as in production, on the default durable inbox: each delivery is stored, typed,
    deduplicated and handled, and what the handler sends goes through the outbox once it has
    returned, so ``ctx.send`` returns the same handles, ``ctx.state`` is kept between events the
    same way and a handler that raises sends nothing and is retried with its backoff. Only the
    threads are missing: the tester runs the engine inline after each delivery, and the inbox's clock
    stands still until :meth:`advance` moves it (to reach a retry). ``settings={"INBOX": "memory"}``
    tests against the in-memory inbox instead.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, *bots: Bot, settings: dict[str, str] | None = None, page_id: str = PAGE_ID,
                 sender: str = USER_ID, community: str | None = COMMUNITY_ID, graph_url: str | None = None) -> None:
        """``graph_url`` sends the bots' Graph calls over HTTP to a real server (the emulator, say)
        instead of recording them in ``tester.calls``."""
        if not bots:
            raise TypeError("BotTester needs at least one Bot")
        self.bots = bots
        self._data = tempfile.TemporaryDirectory(prefix="bots-test-")
        self.env: dict[str, str] = {"GRAPH_API_URL": GRAPH_URL, "GRAPH_RETRY_BASE_MS": "0", "DATA_DIR": self._data.name}
        for bot in bots:
            self.env.update(settings_for(bot))
        self.env.update(settings or {})
        if graph_url:
            self.env["GRAPH_API_URL"] = graph_url
        self.graph = GraphRecorder()
        self.executor = RecordingExecutor()
        self.durable = self.env.get("INBOX", "sqlite").strip().lower() == "sqlite"
        if self.durable:
            self.env.update(INBOX="sqlite", HANDLER_THREADS="0", OUTBOX_THREADS="0")
        self.app = make_app(bots, self.env, executor=None if self.durable else self.executor,
                            session_factory=None if graph_url else self.graph.session)
        self.deployment = self.app.extensions["bots"]
        self.clock = TestClock()
        if self.durable:
            self.deployment.inbox.journal.clock = self.clock
            self._record_outcomes()
        self.client = self.app.test_client()
        self.build = Deliveries(page_id, sender, community)

    @property
    def bot(self) -> Bot:
        return self.bots[0]

    def secret(self, bot: Bot | None = None) -> str:
        return self.env[f"{(bot or self.bot).name.upper()}_APP_SECRET"]

    def post(self, body: dict[str, Any] | bytes | str, *, bot: Bot | str | None = None, topic: str | None = None,
             algorithm: str | None = "sha256", secret: str | None = None, headers: dict[str, Any] | None = None
             ) -> TestResponse:
        """POST a delivery, signed with the bot's App Secret unless ``algorithm`` is None."""
        name = bot if isinstance(bot, str) else (bot or self.bot).name
        raw = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
        sent = {"Content-Type": "application/json"}
        if algorithm:
            header = signature.SHA256_HEADER if algorithm == "sha256" else signature.SHA1_HEADER
            key = secret or self.env.get(f"{name.upper()}_APP_SECRET", self.secret())
            sent[header] = signature.sign(raw, key, algorithm)
        sent.update(headers or {})
        path = f"/webhooks/{name}" + (f"/{topic}" if topic else "")
        answer = self.client.post(path, data=raw, headers=sent)
        self.run_due()
        return answer

    def run_due(self) -> int:
        """Handle what the inbox holds that is due, and deliver its outbox, now (the durable inbox only)."""
        return self.deployment.inbox.run_due() if self.durable else 0

    def advance(self, seconds: float) -> int:
        """Move the inbox's clock on and run what has come due: a retry after its backoff, say."""
        self.clock.now += seconds
        return self.run_due()

    @property
    def pending(self) -> int:
        """Events and outbox messages still waiting (a retry not yet due)."""
        pending: int = self.deployment.inbox.pending
        return pending

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        """Events and messages parked after their last attempt."""
        parked: list[dict[str, Any]] = self.deployment.inbox.dead_letters()
        return parked

    def _record_outcomes(self) -> None:
        """Keep what became of each run the durable engine makes, as the in-memory inbox's executor does."""
        dispatcher = self.deployment.dispatcher
        run = dispatcher.run

        def recorded(bot_name: str, item: Item, **kwargs: Any) -> Outcome:
            outcome: Outcome = run(bot_name, item, **kwargs)
            self.executor.outcomes.append(outcome)
            return outcome
        dispatcher.run = recorded

    def handshake(self, verify_token: str | None = None, *, mode: str = "subscribe", challenge: str = "challenge-1",
                  bot: Bot | None = None) -> TestResponse:
        """The GET Workplace sends when an admin saves the webhook subscription."""
        name = (bot or self.bot).name
        token = verify_token if verify_token is not None else self.env[f"{name.upper()}_VERIFY_TOKEN"]
        return self.client.get(f"/webhooks/{name}", query_string={
            "hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge})

    def message(self, text: str | None = "hello", **kwargs: Any) -> TestResponse:
        """Deliver a chat message; see :meth:`Deliveries.message`."""
        return self.post(self.build.message(text, **kwargs))

    def quick_reply(self, payload: str, text: str | None = None, **kwargs: Any) -> TestResponse:
        return self.post(self.build.quick_reply(payload, text, **kwargs))

    def postback(self, payload: str, title: str | None = None, **kwargs: Any) -> TestResponse:
        return self.post(self.build.postback(payload, title, **kwargs))

    def mention(self, text: str = "@helpdesk can you help?", **kwargs: Any) -> TestResponse:
        return self.post(self.build.mention(text, **kwargs))

    def change(self, object: str, field: str, value: Any, **kwargs: Any) -> TestResponse:
        return self.post(self.build.change(object, field, value, **kwargs))

    @property
    def calls(self) -> list[GraphCall]:
        """Every Graph call the bots made, in order."""
        return self.graph.calls

    @property
    def replies(self) -> list[SentMessage]:
        """Every Send API message, in order."""
        return [SentMessage(c.body["recipient"], c.body["message"].get("text"),
                            c.body["message"].get("quick_replies", []), c.body["message"])
                for c in self.calls if c.path.endswith("me/messages") and "message" in (c.body or {})]

    @property
    def comments(self) -> list[tuple[str, str]]:
        """Every comment as ``(post or comment id, text)``."""
        return [(c.path.split("/")[-2], c.body.get("message")) for c in self.calls if c.path.endswith("/comments")]

    @property
    def outcomes(self) -> list[Outcome]:
        """What became of each delivered item: handled, unmatched, duplicate, ignored, invalid, failed."""
        return self.executor.outcomes

    def dispatch(self, item: Item, bot: Bot | None = None) -> Outcome:
        """Run one item straight through the dispatcher, skipping the HTTP layer."""
        outcome: Outcome = self.app.extensions["bots"].dispatcher.dispatch((bot or self.bot).name, item)
        return outcome

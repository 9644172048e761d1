"""pytest fixtures for bot authors, installed with ``workplace-bots`` (entry point ``pytest11``): a project that
has the package installed has them in every test, with no conftest.

``bot_tester``: a factory, ``bot_tester(bot, **settings) -> BotTester`` (:mod:`bots.testing`). Upper-case
keywords are settings (``INBOX="memory"``, ``ECHO_APP_SECRET=...``); lower-case ones go to ``BotTester`` as
they are (``sender=``, ``page_id=``, ``graph_url=``). Each tester's inbox is shut down after the test::

    def test_help_shows_the_menu(bot_tester):
        tester = bot_tester(bot)
        tester.message("help")
        assert tester.replies[-1].text == "What do you need?"

``workplace``: a factory, ``workplace(bot, **settings) -> Workplace``, a live local Workplace for one test. The
emulator (:mod:`emulator`, in memory, seeded with its six people and two groups) and a bot server
(:func:`bots.flask.make_app`, settings ``**settings`` over the integration's credentials; ``EMULATOR_*``
ones, such as ``EMULATOR_RETRY_DELAYS="0.1,0.2"``, go to the emulator instead) are served over
real HTTP on free loopback ports, in threads. The bot's integration is created from its manifest
(:func:`bots.manifest.manifest`: permissions, visibility, Messenger profile) and each webhook topic is saved
as the Admin Panel saves it: the GET handshake against the live bot server first. So a message a person sends
goes out as a signed webhook, the bot's handler runs in its inbox, and its reply comes back through the Graph
API into the person's chat::

    def test_ping_pong(workplace):
        priya = workplace(bot).person("Priya Raman")
        priya.send("ping")
        assert priya.wait_for_reply().text == "pong"

``Person``: ``send(text)``, ``tap(title, payload)`` (a button: a postback), ``open()`` (open the bot the way the
directory does: Get Started on a first visit), ``chat()`` (every message of the person's chat with the bot),
``wait_for_reply(timeout=5)`` (the bot's first message after the person's last one; on time-out an
``AssertionError`` that shows the chat, the webhook deliveries and the bot's refused Graph calls),
``wait_for_replies(count)`` and ``replies()`` (the bot's messages since the person last wrote).
``Workplace`` has ``url`` (the emulator: ``GRAPH_API_URL``), ``bot_url``, ``settings`` (the bot server's),
``integration``, ``people`` and ``emulator`` (its state, for anything the helpers do not cover).

Importing this module imports neither Flask nor the emulator and starts nothing: that happens when a
test asks for a fixture.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from flask import Flask
    from werkzeug.serving import BaseWSGIServer

    from emulator.app import Emulator
    from emulator.integrations import Integration

    from .bot import Bot
    from .testing import BotTester

__all__ = ["ChatMessage", "Person", "Workplace", "bot_tester", "workplace"]

#: How long ``wait_for_reply`` waits by default, and how often it looks.
REPLY_TIMEOUT, POLL_SECONDS = 5.0, 0.02


# bot_tester ------------------------------------------------------------------------------------
@pytest.fixture
def bot_tester() -> Iterator[Callable[..., BotTester]]:
    """``bot_tester(bot, **settings)``: a :class:`~bots.testing.BotTester`, its inbox shut down after the test."""
    made: list[BotTester] = []

    def make(*bots: Bot, **settings: Any) -> BotTester:
        from .testing import BotTester
        keywords = {name: value for name, value in settings.items() if not name.isupper()}
        chosen = {**(keywords.pop("settings", None) or {}),
                  **{name: str(value) for name, value in settings.items() if name.isupper()}}
        made.append(BotTester(*bots, settings=chosen, **keywords))
        return made[-1]

    yield make
    for tester in made:
        tester.app.extensions["bots"].shutdown(timeout=5)


# workplace -------------------------------------------------------------------------------------
@pytest.fixture
def workplace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Workplace]]:
    """``workplace(bot, **settings)``: a live local Workplace with ``bot``'s integration and a live bot server."""
    made: list[Workplace] = []

    def start(bot: Bot, **settings: Any) -> Workplace:
        made.append(Workplace.start(bot, tmp_path_factory.mktemp(f"workplace-{bot.name}"),
                                    {name: str(value) for name, value in settings.items()}))
        return made[-1]

    yield start
    for one in reversed(made):
        one.close()


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat as the emulator keeps it: who sent it, its text, and the whole body
    (``quick_replies``, ``attachment``, ``postback`` ...)."""

    sender_id: str
    sender: str
    text: str | None
    body: dict[str, Any] = field(repr=False)
    from_bot: bool = field(repr=False, default=False)

    @property
    def quick_reply_titles(self) -> list[str]:
        return [str(item.get("title", "")) for item in self.body.get("quick_replies", []) if isinstance(item, dict)]

    def __str__(self) -> str:
        shown = self.text if self.text is not None else "(attachment)"
        buttons = "".join(f" [{title}]" for title in self.quick_reply_titles)
        return f"{self.sender}: {shown}{buttons}"


class _Served:
    """A WSGI app on a free loopback port, in a daemon thread."""

    def __init__(self, app: Flask) -> None:
        from werkzeug.serving import make_server
        self.app = app
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True,
                                       name=f"workplace-{self.server.server_port}")
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Workplace:
    """The emulator and a bot server wired to each other, for one bot."""

    def __init__(self, bot: Bot, emulator: _Served, integration: Integration) -> None:
        self.bot = bot
        self._emulator = emulator
        self.url = emulator.url
        self.emulator: Emulator = emulator.app.extensions["emulator"]
        self.integration = integration
        self.settings: dict[str, str] = {}
        self._bots: _Served | None = None
        self.bot_url = ""

    @classmethod
    def start(cls, bot: Bot, data_dir: Path, settings: dict[str, str]) -> Workplace:
        """Serve the emulator (``EMULATOR_*`` settings are its own), create the integration, serve the bot with
        its credentials (every other setting), save its webhooks."""
        from emulator import create_app
        ours = {name: value for name, value in settings.items() if name.startswith("EMULATOR_")}
        emulator = _Served(create_app(ours))
        try:
            state: Emulator = emulator.app.extensions["emulator"]
            place = cls(bot, emulator, _create_integration(state, bot, settings))
        except BaseException:
            _stop_emulator(emulator)
            raise
        try:
            place._serve_bot(data_dir, {name: value for name, value in settings.items() if name not in ours})
            place._save_webhooks()
        except BaseException:
            place.close()
            raise
        return place

    def _serve_bot(self, data_dir: Path, settings: dict[str, str]) -> None:
        from .flask import make_app
        prefix, integration = self.bot.name.upper(), self.integration
        self.settings = {"GRAPH_API_URL": self.url, "DATA_DIR": str(data_dir), "GRAPH_RETRY_BASE_MS": "0",
                         f"{prefix}_APP_ID": integration.id, f"{prefix}_APP_SECRET": integration.app_secret,
                         f"{prefix}_ACCESS_TOKEN": integration.access_token or "",
                         f"{prefix}_VERIFY_TOKEN": secrets.token_urlsafe(16), **settings}
        self._bots = _Served(make_app([self.bot], self.settings, name=f"bots-{self.bot.name}"))
        self.bot_url = self._bots.url

    def _save_webhooks(self) -> None:
        """Each topic of the manifest, saved as the Admin Panel's Save does: the handshake first, and no
        subscription when it fails."""
        from emulator import manifests

        from .manifest import manifest
        token = self.settings[f"{self.bot.name.upper()}_VERIFY_TOKEN"]
        hooks = manifest(self.bot, self.bot_url)["webhooks"]
        _, problems = manifests.save_webhooks(self.emulator, self.integration, hooks, token)
        for topic, problem in problems.items():
            raise RuntimeError(f"{self.bot.name}: the {topic} webhook was not saved: {problem}")

    @property
    def people(self) -> list[str]:
        """The names of the people in the community."""
        return [person["name"] for person in self.emulator.community.people()]

    def person(self, who: str) -> Person:
        """The person named ``who`` (a seeded name such as "Priya Raman", a first name, or an id), in their
        1:1 chat with the bot."""
        people = self.emulator.community.people()
        found = [p for p in people if who in (p["id"], p["name"])] or \
                [p for p in people if p["name"].split()[0].lower() == who.lower()]
        if len(found) != 1:
            raise LookupError(f"no one in the local Workplace is called {who!r}: pick one of "
                              f"{', '.join(p['name'] for p in people)}")
        return Person(self, found[0]["id"], found[0]["name"])

    def deliveries(self) -> list[dict[str, Any]]:
        """The integration's webhook delivery log, newest first (topic, status, attempts, detail)."""
        return self.emulator.integrations.deliveries(self.integration.id)

    def close(self) -> None:
        """Let deliveries in flight finish, then stop the bot server, its inbox and the emulator."""
        self.emulator.courier.wait_idle(timeout=5)
        if self._bots is not None:
            self._bots.close()
            self._bots.app.extensions["bots"].shutdown(timeout=5)
        _stop_emulator(self._emulator)


def _stop_emulator(served: _Served) -> None:
    """Stop the emulator's deliveries (waiting a little for those in flight), its server and its database."""
    state: Emulator = served.app.extensions["emulator"]
    state.courier.wait_idle(timeout=2)
    state.close()
    served.close()
    state.store.close()


def _create_integration(state: Emulator, bot: Bot, settings: dict[str, str]) -> Integration:
    """The integration as an admin creates it from ``bots manifest``: name, description, permissions,
    visibility, link-preview domains and the Messenger profile; it joins the seeded groups, as the
    example bots do."""
    from emulator import manifests

    from .manifest import manifest
    proof = settings.get(f"{bot.name.upper()}_APPSECRET_PROOF", "timed").lower() != "off"
    return manifests.create(state, manifest(bot, "http://127.0.0.1"), bot.profile(), require_proof=proof)


class Person:
    """Someone in the local Workplace, in their 1:1 chat with the bot."""

    def __init__(self, place: Workplace, person_id: str, name: str) -> None:
        self.place = place
        self.id = person_id
        self.name = name
        thread, _ = place.emulator.community.direct_thread(person_id, place.integration.page_id)
        self.thread_id: str = thread["id"]

    def __repr__(self) -> str:
        return f"Person({self.name!r}, chatting with {self.place.bot.name!r})"

    def send(self, text: str) -> ChatMessage:
        """Write ``text`` in the chat, as Work Chat's composer does: the bot gets a ``messages`` webhook."""
        return self._message(self.place.emulator.activity.say(self.thread_id, self.id, text))

    def tap(self, title: str, payload: str) -> ChatMessage:
        """Tap a button or menu item: the bot gets a ``messaging_postbacks`` webhook."""
        return self._message(self.place.emulator.activity.tap(self.thread_id, self.id, title, payload))

    def open(self) -> None:
        """Open the chat from the bot directory: a first visit sends the bot's Get Started postback."""
        self.place.emulator.activity.open_bot(self.id, self.place.integration)

    def chat(self) -> list[ChatMessage]:
        """Every message of the chat, oldest first."""
        return [self._message(row) for row in self.place.emulator.community.messages(self.thread_id)]

    def replies(self) -> list[ChatMessage]:
        """The bot's messages since the person last wrote."""
        chat = self.chat()
        mine = [n for n, message in enumerate(chat) if message.sender_id == self.id]
        return [message for message in chat[(mine[-1] + 1 if mine else 0):] if message.from_bot]

    def wait_for_reply(self, timeout: float = REPLY_TIMEOUT) -> ChatMessage:
        """The bot's first message since the person last wrote, once it is in the chat; fails after
        ``timeout`` seconds with what the chat, the webhook log and the bot's refused calls show."""
        return self.wait_for_replies(1, timeout)[0]

    def wait_for_replies(self, count: int, timeout: float = REPLY_TIMEOUT) -> list[ChatMessage]:
        """The bot's first ``count`` messages since the person last wrote, once they are in the chat."""
        deadline = time.monotonic() + timeout
        while True:
            replies = self.replies()
            if len(replies) >= count:
                return replies[:count]
            if time.monotonic() >= deadline:
                raise AssertionError(self._no_reply(count, len(replies), timeout))
            time.sleep(POLL_SECONDS)

    def _message(self, row: dict[str, Any]) -> ChatMessage:
        names = self.place.emulator.community.names()
        sender = row["sender_id"]
        return ChatMessage(sender, names.get(sender, sender), row["body"].get("text"), row["body"],
                           sender == self.place.integration.page_id)

    def _no_reply(self, wanted: int, got: int, timeout: float) -> str:
        bot, emulator = self.place.bot.name, self.place.emulator
        what = "no reply" if got == 0 else f"{got} of the {wanted} replies"
        lines = [f"{what} from {bot} to {self.name} within {timeout:g} s", "the chat:"]
        lines += [f"  {message}" for message in self.chat()] or ["  (empty)"]
        lines.append(f"webhook deliveries to {bot}, newest first:")
        lines += [f"  {d['topic']}: {d['status']} ({d['detail'] or 'no answer yet'}, {d['attempts']} attempt(s))"
                  for d in self.place.deliveries()[:5]] or ["  none (does the bot subscribe to what was sent?)"]
        refused = [c for c in emulator.integrations.recent_calls(self.place.integration.id) if c["status"] >= 400]
        lines += [f"refused Graph call: {c['method']} {c['path']} -> HTTP {c['status']} (code {c['code']})"
                  for c in refused]
        return "\n".join(lines)

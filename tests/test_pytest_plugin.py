"""The pytest plugin (``bots.pytest_plugin``) as a bot author meets it: their own test file, run by pytest in a
folder of its own, with the ``bot_tester`` and ``workplace`` fixtures.

Each run is a separate pytest process (``pytester.runpytest_subprocess``) loading the plugin with ``-p``, as the
``pytest11`` entry point loads it where the package is installed; the checkout goes on ``PYTHONPATH`` because
the repository's venv does not install the package.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

BOT = textwrap.dedent('''\
    import socket

    import pytest

    from bots import Bot

    bot = Bot("pinger", description="answers ping", get_started="HELLO")
    served = []


    @bot.on_message()
    def pong(event, ctx):
        if event.text == "ping":
            ctx.reply("pong")
        elif event.text == "twice":
            ctx.reply("one")
            ctx.reply("two")


    @bot.on_postback("HELLO")
    def hello(event, ctx):
        ctx.reply("hello, " + event.sender_id)
    ''')

PASSING = BOT + textwrap.dedent('''\


    def test_a_person_sends_ping_and_pong_appears_in_the_chat(workplace):
        place = workplace(bot)
        served.extend([place.url, place.bot_url])
        priya = place.person("Priya Raman")
        priya.send("ping")
        assert priya.wait_for_reply().text == "pong"
        assert [str(m) for m in priya.chat()] == ["Priya Raman: ping", "pinger: pong"]
        assert place.deliveries()[0]["status"] == "delivered"
        priya.send("twice")
        assert [m.text for m in priya.wait_for_replies(2)] == ["one", "two"]


    def test_open_sends_get_started_a_tap_a_postback_and_people_are_found_by_first_name(workplace):
        sam = workplace(bot).person("sam")
        sam.open()
        assert sam.wait_for_reply().text == "hello, " + sam.id
        sam.tap("Say hello", "HELLO")
        sam.wait_for_reply()
        assert [str(m) for m in sam.replies()] == ["pinger: hello, " + sam.id]
        assert len(sam.chat()) == 4
        with pytest.raises(LookupError, match="Priya Raman"):
            workplace(bot).person("Nobody")


    def test_the_integration_is_the_manifest_and_the_bot_server_has_its_credentials(workplace):
        place = workplace(bot, LOG_LEVEL="WARNING", EMULATOR_RETRY_DELAYS="0.1")
        assert place.integration.permissions == ["Message any member"]
        subscriptions = place.emulator.integrations.subscriptions(place.integration.id)
        assert {t: (s.callback_url, s.fields) for t, s in subscriptions.items()} == {
            "page": (place.bot_url + "/webhooks/pinger/page", ["messages", "messaging_postbacks"])}
        assert place.settings["PINGER_ACCESS_TOKEN"] == place.integration.access_token
        assert place.settings["GRAPH_API_URL"] == place.url and place.settings["LOG_LEVEL"] == "WARNING"
        assert "EMULATOR_RETRY_DELAYS" not in place.settings
        assert place.emulator.courier.settings.retry_delays == (0.1,)


    def test_bot_tester_builds_a_tester_with_settings_and_keywords(bot_tester):
        tester = bot_tester(bot, PINGER_VERIFY_TOKEN="mine-0123456789", sender="100071234567892")
        assert tester.handshake("mine-0123456789").status_code == 200
        tester.message("ping")
        assert [r.text for r in tester.replies] == ["pong"]
        assert tester.replies[0].recipient == {"id": "100071234567892"}


    def test_zz_the_servers_of_earlier_tests_are_gone():
        assert len(served) == 2
        for url in served:
            host, port = url.removeprefix("http://").split(":")
            with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
                pass
    ''')

FAILING = BOT + textwrap.dedent('''\


    def test_expects_the_wrong_reply(workplace):
        priya = workplace(bot).person("Priya Raman")
        priya.send("ping")
        assert priya.wait_for_reply().text == "pang"


    def test_gets_no_reply(workplace):
        priya = workplace(bot).person("Priya Raman")
        priya.send("anything else")
        priya.wait_for_reply(timeout=0.5)
    ''')


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """``run(source)``: a user's test file, run by pytest in a process of its own with the plugin."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)

    def go(source: str) -> pytest.RunResult:
        pytester.makepyfile(test_user_bot=source)
        return pytester.runpytest_subprocess("-p", "bots.pytest_plugin", "-p", "no:cacheprovider", timeout=120)
    return go


def test_a_bot_authors_end_to_end_test_and_tester_test_pass(run) -> None:
    result = run(PASSING)
    result.assert_outcomes(passed=5)


def test_a_wrong_reply_and_no_reply_fail_saying_what_the_chat_shows(run) -> None:
    result = run(FAILING)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*assert 'pong' == 'pang'*",
        "*no reply from pinger to Priya Raman within 0.5 s",
        "*the chat:",
        "*  Priya Raman: anything else",
        "*webhook deliveries to pinger, newest first:",
        "*  page: delivered (HTTP 200, 1 attempt(s))",
    ])


def test_pytest_lists_the_fixtures(run, pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "bots.pytest_plugin", "--fixtures")
    result.stdout.fnmatch_lines(["bot_tester -- *pytest_plugin.py:*", "workplace -- *pytest_plugin.py:*"])


def test_importing_the_plugin_imports_no_flask_nor_the_emulator_and_starts_nothing() -> None:
    probe = ("import sys, threading, bots.pytest_plugin; "
             "heavy = [m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug', 'emulator') "
             "or m in ('bots.testing', 'bots.flask', 'bots.deployment')]; "
             "print(heavy, threading.active_count())")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[] 1", done.stderr

"""``flask bots deadletters``, ``replay`` and ``work``: an operator finds what failed and runs it again,
and runs handlers in a process of their own.

(The other commands are tested beside what they drive: setup, stats, manifest, simulate.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bots.deliveries import Deliveries
from tests.e2e.reliability_bots.echo import bot as echo
from tests.support import Served, sent_texts, wait_for

BUILD = Deliveries()


def failing_bot(bot, broken: dict) -> None:
    @bot.on_message()
    def file_ticket(event, ctx):
        if broken["on"]:
            raise ConnectionError("ticket system unreachable")
        ctx.reply("ticket filed")


def test_an_operator_lists_dead_letters_and_replays_one(bot, served, graph_server):
    broken = {"on": True}
    failing_bot(bot, broken)
    server = served(INBOX_MAX_ATTEMPTS="2")
    server.post(BUILD.message("printer on fire"))
    wait_for(server.inbox.dead_letters)
    runner = server.app.test_cli_runner()

    listed = runner.invoke(args=["bots", "deadletters"])
    assert "event:1" in listed.output and "ConnectionError: ticket system unreachable" in listed.output
    assert "printer on fire" not in listed.output
    as_json = json.loads(runner.invoke(args=["bots", "deadletters", "--json"]).output)
    assert as_json["dead_letters"][0]["attempts"] == 2

    broken["on"] = False
    replayed = runner.invoke(args=["bots", "replay", "event:1"])
    assert replayed.exit_code == 0 and "replaying 1 dead letter" in replayed.output
    assert wait_for(lambda: sent_texts(graph_server)) == ["ticket filed"]
    assert runner.invoke(args=["bots", "deadletters"]).output.strip() == "no dead letters"


def test_replay_needs_an_id_or_all_and_says_when_the_id_is_unknown(bot, served):
    failing_bot(bot, {"on": True})
    runner = served().app.test_cli_runner()
    assert "give one dead letter id" in runner.invoke(args=["bots", "replay"]).output
    assert "give one dead letter id" in runner.invoke(args=["bots", "replay", "event:1", "--all"]).output
    assert "looks like event:12" in runner.invoke(args=["bots", "replay", "bogus"]).output
    unknown = runner.invoke(args=["bots", "replay", "event:99"])
    assert unknown.exit_code == 1 and "no dead letter 'event:99'" in unknown.output
    assert "replaying 0 dead letters" in runner.invoke(args=["bots", "replay", "--all"]).output


def test_loading_the_app_for_a_command_starts_no_handler_threads(bot, served):
    failing_bot(bot, {"on": False})
    server = served()
    server.app.test_cli_runner().invoke(args=["bots", "deadletters"])
    assert not server.app.extensions["bots"].started


def test_flask_bots_work_handles_what_web_processes_that_only_accept_have_appended(graph_server, tmp_path):
    web = Served(echo, graph_server.url, str(tmp_path), HANDLER_THREADS="0", OUTBOX_THREADS="0")
    assert web.post(BUILD.message("queued while no one works")).status_code == 200
    assert web.inbox.pending == 1
    env = {"PATH": os.environ["PATH"], "DOTENV": "0", "DATA_DIR": str(tmp_path), "GRAPH_API_URL": graph_server.url,
           "ECHO_APP_SECRET": web.secret, "ECHO_ACCESS_TOKEN": "test-token-echo", "ECHO_VERIFY_TOKEN": "verify-echo"}
    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    worker = subprocess.Popen([flask, "--app", "app:create_app({'HANDLERS': 'tests.e2e.reliability_bots'})", "bots",
                               "work", "--threads", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        assert wait_for(lambda: sent_texts(graph_server), timeout=20) == ["re:queued while no one works"]
        wait_for(web.idle)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=15)[0]
    assert worker.returncode == 0, output
    assert "working on the inbox of echo" in output

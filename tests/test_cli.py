"""``flask bots deadletters``, ``replay`` and ``work``: an operator finds what failed and runs it again,
and runs handlers in a process of their own. ``bots new``: a developer starts a bot; ``bots manifest`` and
``bots provision`` for a bot whose settings are not there yet.

(The other commands are tested beside what they drive: setup, stats, manifest, simulate.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bots.deliveries import Deliveries
from bots.flask.command import cli
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


ROOT = Path(__file__).resolve().parent.parent


def bots_command(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The ``bots`` console script in ``cwd``, this checkout importable, ``.env`` read as a developer's would be."""
    full = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT}", **env}
    return subprocess.run([sys.executable, "-m", "bots.flask.command", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=60)


def test_bots_new_writes_a_bot_and_its_test_and_the_test_passes(tmp_path):
    made = bots_command(["new", "mybot", "--description", 'Answers "hi"'], tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[:2] == ["wrote handlers/mybot.py", "wrote tests/test_mybot.py"]
    assert 'Bot(\n    "mybot",\n    description="Answers \\"hi\\"",' in (tmp_path / "handlers" / "mybot.py").read_text()
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_mybot.py"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
                            capture_output=True, text=True, timeout=120)
    assert "3 passed" in tested.stdout, tested.stdout + tested.stderr


@pytest.mark.parametrize(("name", "reason"), [
    ("MyBot", "'MyBot' cannot name a bot: use lower-case letters, digits and _, starting with a letter"),
    ("2fast", "'2fast' cannot name a bot"),
    ("my-bot", "'my-bot' cannot name a bot"),
    ("class", "'class' is a Python keyword, so no module can be named for it"),
])
def test_bots_new_refuses_a_name_no_bot_can_have(tmp_path, name, reason):
    refused = CliRunner().invoke(cli, ["new", name, "--handlers", str(tmp_path / "h"), "--tests", str(tmp_path / "t")])
    assert refused.exit_code == 1 and reason in refused.output
    assert not (tmp_path / "h").exists() and not (tmp_path / "t").exists()


def test_bots_new_refuses_to_overwrite_and_writes_nothing_then(tmp_path):
    handlers, tests = tmp_path / "handlers", tmp_path / "tests"
    tests.mkdir()
    (tests / "test_mybot.py").write_text("# mine\n")
    refused = CliRunner().invoke(cli, ["new", "mybot", "--handlers", str(handlers), "--tests", str(tests)])
    assert refused.exit_code == 1
    assert f"{tests / 'test_mybot.py'} exists already: nothing was written" in refused.output
    assert not (handlers / "mybot.py").exists() and (tests / "test_mybot.py").read_text() == "# mine\n"


def project_with_a_new_bot(tmp_path: Path) -> Path:
    """A project with the example app and a bot module whose settings .env does not have yet."""
    (tmp_path / "app.py").write_text((ROOT / "app.py").read_text())
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "__init__.py").write_text("")
    (tmp_path / "handlers" / "newbie.py").write_text(
        "from bots import Bot\nbot = Bot('newbie')\n\n@bot.on_message()\ndef hi(event, ctx):\n    ctx.reply('hi')\n")
    (tmp_path / ".env").write_text(f"DATA_DIR={tmp_path / 'data'}\n")
    return tmp_path


def test_bots_manifest_needs_no_credentials(tmp_path):
    described = bots_command(["manifest", "newbie", "--json"], project_with_a_new_bot(tmp_path))
    assert described.returncode == 0, described.stderr
    integration = json.loads(described.stdout)["integrations"][0]
    assert integration["name"] == "newbie" and integration["permissions"] == ["Message any member"]
    assert "MISSING_SETTINGS" not in (tmp_path / ".env").read_text()


def test_bots_provision_creates_the_integration_and_writes_env(tmp_path, serve):
    from emulator import create_app
    emulator = create_app({"EMULATOR_DEV_TOKEN": "dev-token-0123456789"})
    url = serve(emulator)
    project = project_with_a_new_bot(tmp_path)
    done = bots_command(["provision", "newbie", "--callback-url", "http://127.0.0.1:9", "--wait", "0"], project,
                        EMULATOR_DEV_TOKEN="dev-token-0123456789", GRAPH_API_URL=url)
    integration = emulator.extensions["emulator"].integrations.by_name("newbie")
    assert done.returncode == 0, done.stderr
    assert f"newbie: integration {integration.id} in the local Workplace; credentials in .env" in done.stdout
    assert "does not serve it yet" in done.stdout
    env = (project / ".env").read_text()
    assert f"NEWBIE_APP_SECRET={integration.app_secret}" in env and f"NEWBIE_APP_ID={integration.id}" in env
    refused = bots_command(["provision", "newbie"], project, GRAPH_API_URL=url)
    assert refused.returncode == 1 and "EMULATOR_DEV_TOKEN is not set" in refused.stderr
    emulator.extensions["emulator"].close()


def test_flask_bots_routes_lists_a_bot_left_out_for_want_of_its_settings(tmp_path):
    from app import create_app
    from bots import Bot
    from bots.testing import settings_for
    ready, newbie = Bot("ready"), Bot("newbie")
    env = {**settings_for(ready), "DATA_DIR": str(tmp_path), "INBOX": "memory", "MISSING_SETTINGS": "skip"}
    listed = create_app({"BOTS": [ready, newbie], "DOTENV": False, "ENVIRON": env}).test_cli_runner().invoke(
        args=["bots", "routes"]).output.splitlines()
    assert listed[0].startswith("ready  /webhooks/ready")
    assert listed[-1].startswith("newbie  not served: NEWBIE_APP_SECRET: is not set")
    assert listed[-1].endswith("(`flask bots provision newbie` in the local Workplace)")

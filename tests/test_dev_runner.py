"""The dev runner's parts that need no server: the dev .env, noticing a save, and what a bot is provisioned with.
(The runner itself, with real processes: tests/e2e/test_onboarding.py.)"""

from __future__ import annotations

import json
import os

from dotenv import dotenv_values

from bots import Bot
from bots.dev import envfile, watch
from bots.dev.catalog import describe, dev_profile


def test_a_new_env_has_local_credentials_and_the_development_settings(tmp_path):
    path = tmp_path / ".env"
    envfile.create(path, ["helpdesk"], "http://127.0.0.1:9001")
    values = dotenv_values(path)
    assert values["GRAPH_API_URL"] == "http://127.0.0.1:9001" and values["MISSING_SETTINGS"] == "skip"
    assert len(values["EMULATOR_DEV_TOKEN"]) >= 24 and envfile.has_credentials(path, "helpdesk")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_an_existing_env_gains_only_what_it_lacks(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# mine\nMISSING_SETTINGS=fail\nHELPDESK_APP_SECRET=kept-secret-01\n")
    token = envfile.ensure_dev_settings(path)
    assert envfile.ensure_dev_settings(path) == token
    assert dotenv_values(path) == {"MISSING_SETTINGS": "fail", "HELPDESK_APP_SECRET": "kept-secret-01",
                                   "EMULATOR_DEV_TOKEN": token}
    assert path.read_text().startswith("# mine\n")


def test_credentials_replace_the_bots_old_ones_and_say_whether_anything_changed(tmp_path):
    path = tmp_path / ".env"
    path.write_text("MYBOT_ACCESS_TOKEN=old-token-0123\nOTHER=1\n")
    issued = envfile.Credentials("mybot", "123", "secret-0123456", "token-0123456", "verify-0123")
    assert envfile.write_credentials(path, issued) is True
    assert envfile.write_credentials(path, issued) is False
    assert dotenv_values(path) == {"MYBOT_ACCESS_TOKEN": "token-0123456", "OTHER": "1", "MYBOT_APP_ID": "123",
                                   "MYBOT_APP_SECRET": "secret-0123456", "MYBOT_VERIFY_TOKEN": "verify-0123"}
    assert "secret-0123456" not in repr(issued) and "token-0123456" not in repr(issued)


def test_a_snapshot_sees_a_new_or_saved_module_but_not_bytecode(tmp_path):
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.py").write_text("")
    before = watch.snapshot(tmp_path)
    assert before == {}
    (tmp_path / "mybot.py").write_text("x = 1\n")
    after = watch.snapshot(tmp_path)
    assert list(after) == [str(tmp_path / "mybot.py")]
    os.utime(tmp_path / "mybot.py", ns=(after[str(tmp_path / "mybot.py")] + 10**9,) * 2)
    assert watch.snapshot(tmp_path) != after
    assert watch.mtime(tmp_path / "gone.py") == 0


def test_a_snapshot_sees_the_data_a_bot_reads_but_not_editors_scratch_files(tmp_path):
    (tmp_path / "data").mkdir()
    for scratch in (".mybot.py.swp", "mybot.py~", "#mybot.py#", ".#mybot.py"):
        (tmp_path / scratch).write_text("")
    assert watch.snapshot(tmp_path) == {}
    (tmp_path / "data" / "docs.json").write_text("{}")
    assert list(watch.snapshot(tmp_path)) == [str(tmp_path / "data" / "docs.json")]


def test_a_chat_bot_without_get_started_is_given_one_and_a_declared_profile_is_kept():
    plain, declared, silent = Bot("plain"), Bot("declared", get_started="HELLO", greeting="Hi"), Bot("silent")

    @plain.on_message()
    def answer(event, ctx): ...

    @declared.on_message()
    def answer_too(event, ctx): ...
    assert dev_profile(plain) == {"get_started": {"payload": "GET_STARTED"}}
    assert dev_profile(declared) == declared.profile()
    assert dev_profile(silent) == {}
    assert describe(plain, "http://127.0.0.1:8000")["manifest"]["webhooks"][0]["callback_url"] == (
        "http://127.0.0.1:8000/webhooks/plain/page")


def test_the_catalog_prints_each_bot_of_a_package_as_the_runner_reads_it(capsys):
    from bots.dev.catalog import main
    main(["handlers", "http://127.0.0.1:9000"])
    found = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)["bots"]}
    assert sorted(found) == ["docs", "helpdesk"]
    assert found["helpdesk"]["profile"]["get_started"] == {"payload": "GET_STARTED"}
    assert found["docs"]["manifest"]["link_preview_domains"] == ["docs.example.com"]
    assert {hook["callback_url"] for hook in found["docs"]["manifest"]["webhooks"]} == {
        "http://127.0.0.1:9000/webhooks/docs/link", "http://127.0.0.1:9000/webhooks/docs/page"}

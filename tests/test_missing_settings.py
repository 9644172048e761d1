"""A bot whose settings are missing (``MISSING_SETTINGS=skip``, as ``make run`` runs) never stops the others:
the server starts with the bots it can serve and logs, for each one left out, the command that fixes it;
without that setting (production) start-up still stops at the first missing setting."""

from __future__ import annotations

import logging

import pytest

from app import create_app
from bots import Bot, ConfigError
from bots.discovery import find_bots
from bots.testing import settings_for

READY, NEW = Bot("ready"), Bot("newbie")


def build(tmp_path, **settings: str):
    env = {**settings_for(READY), "DATA_DIR": str(tmp_path), "INBOX": "memory", **settings}
    return create_app({"BOTS": [READY, NEW], "DOTENV": False, "ENVIRON": env})


def test_a_bot_without_settings_is_left_out_and_the_log_names_the_fix(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "bots")
    deployment = build(tmp_path, MISSING_SETTINGS="skip").extensions["bots"]
    assert list(deployment.runtimes) == ["ready"]
    assert list(deployment.skipped) == ["newbie"] and deployment.skipped["newbie"].error.variable == "NEWBIE_APP_SECRET"
    assert [bot.name for bot in deployment.bots] == ["ready", "newbie"]
    assert [r.getMessage().split(". Fix:")[0] for r in caplog.records] == [
        "newbie: not served: NEWBIE_APP_SECRET: is not set: copy it from the Admin Panel (Integrations > newbie) "
        "into .env or the environment; .env.example lists every variable"]
    assert "Fix: `flask bots provision newbie` (or `bots provision newbie`) creates its integration" in caplog.text


def test_by_default_a_missing_setting_still_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match="NEWBIE_APP_SECRET: is not set"):
        build(tmp_path)
    with pytest.raises(ConfigError, match="MISSING_SETTINGS: is malformed: expected one of fail, skip"):
        build(tmp_path, MISSING_SETTINGS="maybe")


def test_a_module_that_fails_to_import_is_left_out_only_when_skipping(tmp_path, monkeypatch, caplog):
    package = tmp_path / "halfwritten"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text("from bots import Bot\nbot = Bot('good')\n")
    (package / "broken.py").write_text("from bots import Bot\nbot = Bot('broken'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [bot.name for bot in find_bots("halfwritten", skip_broken=True)] == ["good"]
    assert "halfwritten.broken: not served: importing it failed (SyntaxError" in caplog.text
    with pytest.raises(SyntaxError):
        find_bots("halfwritten")


def test_when_a_missing_setting_stops_start_up_the_way_round_it_is_named(monkeypatch, capsys, tmp_path):
    import app as application

    monkeypatch.setenv("DOTENV", "0")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BOTS", "helpdesk")
    for suffix in ("APP_SECRET", "ACCESS_TOKEN", "VERIFY_TOKEN"):
        monkeypatch.delenv(f"HELPDESK_{suffix}", raising=False)
    with pytest.raises(SystemExit):
        application.__getattr__("app")
    assert capsys.readouterr().err.splitlines() == [
        "error: HELPDESK_APP_SECRET: is not set: copy it from the Admin Panel (Integrations > helpdesk) into .env or "
        "the environment; .env.example lists every variable",
        "hint: to start without the bots whose settings are missing, set MISSING_SETTINGS=skip (each is logged with "
        "its fix) or BOTS=<the names to serve>"]

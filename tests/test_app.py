"""The app factory: bots found in handlers/, BOTS to choose, settings read at creation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app import create_app
from bots.errors import ConfigError
from bots.testing import settings_for
from handlers.docs import bot as docs
from handlers.helpdesk import bot as helpdesk

ROOT = Path(__file__).resolve().parent.parent


def isolated(**settings) -> dict:
    return {"DOTENV": False, "ENVIRON": {}, **settings}


def test_serves_every_bot_in_handlers():
    app = create_app(isolated(**settings_for(helpdesk), **settings_for(docs)))
    assert sorted(app.extensions["bots"].runtimes) == ["docs", "helpdesk"]


def test_index_lists_the_bots_and_their_webhook_urls_without_secrets():
    app = create_app(isolated(BOTS="helpdesk", **settings_for(helpdesk)))
    body = app.test_client().get("/").json
    assert body["bots"][0]["webhook"] == "http://localhost/webhooks/helpdesk"
    assert "test-secret" not in str(body)
    assert app.test_client().get("/healthz").json["ok"] is True


def test_a_missing_setting_stops_creation_naming_it():
    with pytest.raises(ConfigError, match="HELPDESK_APP_SECRET"):
        create_app(isolated(BOTS="helpdesk"))


def test_bots_not_listed_need_no_settings(tmp_path, monkeypatch):
    package = tmp_path / "morebots"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text("from bots import Bot\nbot = Bot('one')\n")
    (package / "two.py").write_text("from bots import Bot\nbot = Bot('two')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = create_app(isolated(HANDLERS="morebots", BOTS="two", TWO_APP_SECRET="secret-two",
                              TWO_ACCESS_TOKEN="token-two", TWO_VERIFY_TOKEN="verify-two"))
    assert list(app.extensions["bots"].runtimes) == ["two"]
    with pytest.raises(ConfigError, match="BOTS: names three, which no module in morebots/ defines"):
        create_app(isolated(HANDLERS="morebots", BOTS="two,three"))


def test_two_bots_with_one_name_are_an_error_naming_both_modules(tmp_path, monkeypatch):
    package = tmp_path / "clash"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from bots import Bot\nbot = Bot('same')\n")
    (package / "b.py").write_text("from bots import Bot\nbot = Bot('same')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"clash.a and clash.b"):
        create_app(isolated(HANDLERS="clash"))


def test_bot_objects_can_be_served_directly(bot):
    app = create_app(isolated(BOTS=[bot], **settings_for(bot)))
    assert list(app.extensions["bots"].runtimes) == ["demo"]


def test_importing_app_needs_no_settings_and_a_bad_setting_prints_one_line():
    script = textwrap.dedent("""
        import app
        print("imported")
        app.app
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "BOTS": "helpdesk", "HELPDESK_APP_SECRET": "0123456789abcdef",
                                 "HELPDESK_ACCESS_TOKEN": "token-value", "HELPDESK_VERIFY_TOKEN": "x"})
    assert result.stdout.strip() == "imported"
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "error: HELPDESK_VERIFY_TOKEN: is malformed: expected at least 8 visible characters with no spaces "
        "(value not shown)"]

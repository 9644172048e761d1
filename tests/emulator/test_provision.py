"""The development-only provisioning API (``/admin/api/dev``) and the dev .env sync of the Admin Panel's resets:
what ``make run`` uses to turn a saved bot module into a live integration, and to keep it live after a reset."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values
from emulator_helpers import DANA, IT_HELP, VERIFY

from bots import Bot
from bots.dev.catalog import describe
from bots.signature import timed_proof
from emulator import create_app, graph

DEV_TOKEN = "dev-token-0123456789"
JORDAN = "100071234567894"  # the seeded Administrator
AUTH = {"Authorization": f"Bearer {DEV_TOKEN}"}


def newbie() -> Bot:
    bot = Bot("newbie", description="a bot just written")

    @bot.on_message("ping")
    def ping(event, ctx): ...
    return bot


def described(bot: Bot, callback_url: str) -> dict:
    """The catalog's entry for ``bot``, its webhooks pointing at the callback fixture's /webhooks/<bot>."""
    entry = describe(bot, callback_url)
    for hook in entry["manifest"]["webhooks"]:
        hook["callback_url"] = f"{callback_url}/webhooks/{bot.name}"
    return entry


@pytest.fixture
def dev(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("NEWBIE_APP_SECRET=old-secret-0123\nNEWBIE_ACCESS_TOKEN=old-token-0123\n")
    app = create_app({"EMULATOR_DEV_TOKEN": DEV_TOKEN, "EMULATOR_DEV_ENV_FILE": str(env_file)})
    app.env_file = env_file
    yield app
    app.extensions["emulator"].close()


def provision(app, entry: dict, **extra):
    return app.test_client().post("/admin/api/dev/integrations", json={**entry, **extra}, headers=AUTH)


def test_the_api_is_off_without_a_dev_token_and_refuses_a_wrong_one(dev, callback):
    entry = described(newbie(), callback.url)
    off = create_app({}).test_client().post("/admin/api/dev/integrations", json=entry, headers=AUTH)
    assert off.status_code == 400 and "Unsupported post request" in off.json["error"]["message"]  # the Graph API's
    client = dev.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong-token-0000"}, {"Authorization": DEV_TOKEN}):
        refused = client.post("/admin/api/dev/integrations", json=entry, headers=headers)
        assert refused.status_code == 401 and "EMULATOR_DEV_TOKEN" in refused.json["error"]
    assert dev.extensions["emulator"].integrations.by_name("newbie") is None


def test_a_manifest_becomes_an_integration_once_however_often_it_is_sent(dev, callback):
    bot = newbie()
    first = provision(dev, described(bot, callback.url))
    assert first.status_code == 200 and first.json["created"] is True
    state = dev.extensions["emulator"]
    integration = state.integrations.by_name("newbie")
    assert (first.json["app_id"], first.json["app_secret"], first.json["access_token"]) == (
        integration.id, integration.app_secret, integration.access_token)
    assert integration.permissions == ["Message any member"] and integration.listed
    assert integration.profile == {"get_started": {"payload": "GET_STARTED"}}
    assert integration.page_id in state.community.members(IT_HELP)

    @bot.on_mention
    def mentioned(event, ctx): ...
    again = provision(dev, described(bot, callback.url))
    assert again.json["created"] is False and again.json["access_token"] == first.json["access_token"]
    assert [i.name for i in state.integrations.all()].count("newbie") == 1
    assert state.integrations.by_name("newbie").permissions == ["Message any member", "Manage group content",
                                                                 "Mention bot"]
    state.integrations.update(integration.id, permissions=[])
    provision(dev, described(bot, callback.url), update=False)
    assert state.integrations.by_name("newbie").permissions == []


def test_webhooks_are_saved_only_after_the_handshake_and_unwanted_ones_removed(dev, callback):
    entry = described(newbie(), callback.url)
    provision(dev, entry)
    client, state = dev.test_client(), dev.extensions["emulator"]
    integration = state.integrations.by_name("newbie")
    path = "/admin/api/dev/integrations/newbie/webhooks"

    refused = client.post(path, json={"verify_token": "not-the-token", "webhooks": entry["manifest"]["webhooks"]},
                          headers=AUTH)
    assert refused.status_code == 409 and "verification request failed" in refused.json["errors"]["page"]
    assert state.integrations.subscriptions(integration.id) == {}

    saved = client.post(path, json={"verify_token": VERIFY, "webhooks": entry["manifest"]["webhooks"]}, headers=AUTH)
    assert saved.status_code == 200 and saved.json == {"saved": ["page"], "errors": {}}
    assert state.integrations.subscriptions(integration.id)["page"].fields == ["messages"]

    assert client.post(path, json={"verify_token": VERIFY, "webhooks": []}, headers=AUTH).status_code == 200
    assert state.integrations.subscriptions(integration.id) == {}
    unknown = client.post("/admin/api/dev/integrations/nobody/webhooks", json={}, headers=AUTH)
    assert unknown.status_code == 404


def test_an_admin_panel_reset_writes_the_new_value_into_the_dev_env(dev, callback):
    provision(dev, described(newbie(), callback.url))
    state = dev.extensions["emulator"]
    integration = state.integrations.by_name("newbie")
    admin = dev.test_client()
    admin.post("/work/viewer", data={"person_id": JORDAN})
    assert admin.post(f"/admin/integrations/{integration.id}/token").status_code == 302
    assert dotenv_values(dev.env_file)["NEWBIE_ACCESS_TOKEN"] == state.integrations.get(integration.id).access_token
    assert admin.post(f"/admin/integrations/{integration.id}/secret").status_code == 302
    assert dotenv_values(dev.env_file)["NEWBIE_APP_SECRET"] == state.integrations.get(integration.id).app_secret


def test_a_reset_writes_nothing_outside_development_or_for_a_bot_the_env_does_not_serve(dev, callback, tmp_path):
    other = Bot("stranger")

    @other.on_message()
    def anything(event, ctx): ...
    provision(dev, described(other, callback.url))
    before = dev.env_file.read_text()
    admin = dev.test_client()
    admin.post("/work/viewer", data={"person_id": JORDAN})
    stranger = dev.extensions["emulator"].integrations.by_name("stranger")
    assert admin.post(f"/admin/integrations/{stranger.id}/token").status_code == 302
    assert dev.env_file.read_text() == before

    plain = create_app({"EMULATOR_DEV_TOKEN": DEV_TOKEN})
    provision(plain, described(newbie(), callback.url))
    client = plain.test_client()
    client.post("/work/viewer", data={"person_id": JORDAN})
    assert client.post(f"/admin/integrations/{plain.extensions['emulator'].integrations.by_name('newbie').id}"
                       "/token").status_code == 302
    assert dev.env_file.read_text() == before
    plain.extensions["emulator"].close()


def test_domains_greeting_and_menu_come_from_the_bot(dev, callback):
    from bots import messages
    bot = Bot("wiki", description="the wiki", get_started="START", greeting="Ask me",
              menu=[messages.postback_button("Search", "SEARCH")])
    bot.link_preview("wiki.example.com", fetch=True)
    provision(dev, described(bot, callback.url))
    integration = dev.extensions["emulator"].integrations.by_name("wiki")
    assert integration.link_domains == ["wiki.example.com"] and integration.has("Link previews")
    assert integration.profile["get_started"] == {"payload": "START"}
    assert integration.profile["greeting"] == [{"locale": "default", "text": "Ask me"}]
    assert integration.profile["persistent_menu"][0]["call_to_actions"] == [
        {"type": "postback", "title": "Search", "payload": "SEARCH"}]
    assert integration.description == "the wiki"


def send_as(app, token: str, secret: str):
    """A Send API call made as a bot server holding ``token`` and ``secret`` would make it (with its proof)."""
    return app.test_client().post("/me/messages", headers={"Authorization": f"Bearer {token}"},
                                  query_string=timed_proof(token, secret),
                                  json={"recipient": {"id": DANA}, "message": {"text": "still here"}})


@pytest.mark.parametrize("reset", ["token", "secret"])
def test_in_development_the_old_credentials_work_until_the_reload_and_not_after(dev, callback, reset, monkeypatch):
    provision(dev, described(newbie(), callback.url))
    integrations = dev.extensions["emulator"].integrations
    old = integrations.by_name("newbie")
    admin = dev.test_client()
    admin.post("/work/viewer", data={"person_id": JORDAN})
    admin.post(f"/admin/integrations/{old.id}/{reset}")
    assert send_as(dev, old.access_token, old.app_secret).status_code == 200, "the bot server has not reloaded yet"
    new = integrations.get(old.id)
    assert send_as(dev, new.access_token, new.app_secret).status_code == 200
    monkeypatch.setattr(graph, "DEV_GRACE_SECONDS", 0.0)
    refused = send_as(dev, old.access_token, old.app_secret)
    assert refused.status_code in (400, 401) and refused.json["error"]["code"] in (100, 190)


def test_outside_development_a_reset_token_is_refused_at_once(callback):
    plain = create_app({"EMULATOR_DEV_TOKEN": DEV_TOKEN})
    provision(plain, described(newbie(), callback.url))
    integrations = plain.extensions["emulator"].integrations
    old = integrations.by_name("newbie")
    integrations.reset_token(old.id)
    refused = send_as(plain, old.access_token, old.app_secret)
    assert refused.status_code == 401 and refused.json["error"]["code"] == 190
    plain.extensions["emulator"].close()

"""The manifest: what to enter in the Admin Panel, derived from the bot's handlers."""

from __future__ import annotations

import json

from bots import Bot
from bots.manifest import manifest, permissions
from bots.testing import BotTester
from handlers.docs import bot as docs
from handlers.helpdesk import bot as helpdesk


def test_permissions_follow_the_handlers():
    assert permissions(helpdesk) == ["Message any member", "Mention bot", "Read group content",
                                     "Manage group content"]
    assert permissions(docs) == ["Message any member", "Link previews"]
    watcher = Bot("watcher")
    watcher.on("workplace_security", "admin_activity")(lambda e, c: None)
    assert permissions(watcher) == ["Read security logs"]


def test_discoverable_needs_message_any_member_even_without_chat_handlers():
    assert permissions(Bot("listed", discoverable=True)) == ["Message any member"]


def test_extra_permissions_can_be_declared():
    bot = Bot("hr", permissions=["Read user email"])
    assert permissions(bot) == ["Read user email"]


def test_the_manifest_lists_webhooks_with_callback_urls_and_domains():
    data = manifest(docs, "https://bots.example.com/")
    assert data["name"] == "docs" and data["discoverable"] is True
    assert data["webhooks"] == [
        {"topic": "link", "fields": ["collection", "preview"], "callback_url": "https://bots.example.com/webhooks/docs/link",
         "verify_token": "the value of DOCS_VERIFY_TOKEN"},
        {"topic": "page", "fields": ["messages"], "callback_url": "https://bots.example.com/webhooks/docs/page",
         "verify_token": "the value of DOCS_VERIFY_TOKEN"}]
    assert data["link_preview_domains"] == ["docs.example.com"]


def test_a_topic_without_fields_lists_every_known_field():
    bot = Bot("all_groups")
    bot.on("group")(lambda e, c: None)
    assert manifest(bot, "https://x.test")["webhooks"][0]["fields"] == ["posts", "comments", "membership"]


def test_flask_bots_manifest_prints_text_and_json_without_secrets():
    tester = BotTester(helpdesk, docs)
    runner = tester.app.test_cli_runner()
    text = runner.invoke(args=["bots", "manifest", "--callback-url", "https://bots.corp.test"]).output
    assert "Integration: docs" in text and "Integration: helpdesk" in text
    assert "https://bots.corp.test/webhooks/helpdesk/page" in text
    assert "Link preview domains: docs.example.com" in text
    data = json.loads(runner.invoke(args=["bots", "manifest", "helpdesk", "--json"]).output)
    assert [i["name"] for i in data["integrations"]] == ["helpdesk"]
    for value in tester.env.values():
        if value.startswith("test-"):
            assert value not in text

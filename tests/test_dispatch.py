"""Dispatch: redeliveries run once, the bot's own messages are skipped."""

from __future__ import annotations

from bots import Bot
from bots.testing import PAGE_ID, BotTester


def count_messages(bot: Bot) -> list:
    seen = []

    @bot.on_message()
    def record(event, ctx):
        seen.append(event.mid)
    return seen


def test_the_same_message_delivered_twice_runs_once(tester, bot):
    seen = count_messages(bot)
    body = tester.build.message("hi", mid="m_same")
    assert tester.post(body).status_code == 200
    assert tester.post(body).status_code == 200
    assert seen == ["m_same"]
    assert [o.status.value for o in tester.outcomes] == ["handled"], "the redelivery is dropped before any run"


def test_the_same_change_delivered_twice_runs_once_and_a_different_one_runs(tester, bot):
    seen = []
    bot.on("group", "posts")(lambda event, ctx: seen.append(event.post_id))
    value = {"verb": "add", "post_id": "1_2", "message": "hello", "from": {"id": "7"}}
    tester.change("group", "posts", value)
    tester.change("group", "posts", value)
    tester.change("group", "posts", {**value, "verb": "edit"})
    assert seen == ["1_2", "1_2"]


def test_echoes_of_the_bots_own_messages_are_ignored(tester, bot):
    seen = count_messages(bot)
    tester.message("from the bot", is_echo=True)
    tester.post(tester.build.message("sent as the page", sender=PAGE_ID))
    assert seen == []
    assert [o.status.value for o in tester.outcomes] == ["ignored", "ignored"]


def test_the_bots_own_comments_are_ignored_once_its_page_is_known(tester, bot):
    seen = []
    bot.on("group", "comments")(lambda event, ctx: seen.append(event.sender_id))
    tester.message("hello")  # a page entry: its id is the bot's page
    tester.change("group", "comments", {"verb": "add", "comment_id": "c", "from": {"id": PAGE_ID}})
    tester.change("group", "comments", {"verb": "add", "comment_id": "d", "from": {"id": "someone"}})
    assert seen == ["someone"]


def test_ignore_self_can_be_turned_off():
    bot = Bot("mirror", ignore_self=False)
    seen = count_messages(bot)
    BotTester(bot).message("echo", is_echo=True)
    assert len(seen) == 1


def test_messenger_page_messages_without_community_use_the_same_handlers():
    bot = Bot("messenger")
    seen = []
    bot.on_message()(lambda event, ctx: seen.append((event.community_id, event.text)))
    tester = BotTester(bot, community=None)
    tester.message("hello from Messenger")
    assert seen == [(None, "hello from Messenger")]

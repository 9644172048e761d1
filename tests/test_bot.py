"""Registering handlers with decorators, and which handler an event goes to."""

from __future__ import annotations

import re

import pytest

from bots import Bot


def test_first_matching_handler_in_registration_order_wins(tester, bot):
    @bot.on_message(r"^help")
    def specific(event, ctx):
        ctx.reply("specific")

    @bot.on_message()
    def anything(event, ctx):
        ctx.reply("fallback")

    tester.message("help me")
    tester.message("hello")
    assert [r.text for r in tester.replies] == ["specific", "fallback"]


def test_message_regex_is_searched_and_its_match_reaches_the_handler(tester, bot):
    @bot.on_message(r"order (?P<number>\d+)")
    def order(event, ctx):
        ctx.reply(f"order {ctx.match.group('number')}")

    tester.message("where is my order 42 please")
    assert tester.replies[-1].text == "order 42"


def test_message_predicate(tester, bot):
    @bot.on_message(lambda event: bool(event.attachments))
    def with_file(event, ctx):
        ctx.reply(f"got {event.attachments[0].type}")

    tester.message(None, attachments=[{"type": "image", "payload": {"url": "https://x.test/a.png"}}])
    assert tester.replies[-1].text == "got image"


def test_postback_by_exact_payload_regex_or_predicate(tester, bot):
    @bot.on_postback("START")
    def start(event, ctx):
        ctx.reply("started")

    @bot.on_postback(re.compile(r"ITEM_(\d+)"))
    def item(event, ctx):
        ctx.reply(f"item {ctx.match.group(1)}")

    @bot.on_postback(lambda event: event.payload.startswith("X"))
    def x(event, ctx):
        ctx.reply("x")

    tester.postback("START")
    tester.postback("ITEM_7")
    tester.postback("XYZ")
    tester.postback("START_OVER")
    assert [r.text for r in tester.replies] == ["started", "item 7", "x"]
    assert tester.outcomes[-1].status.value == "unmatched"


def test_quick_reply_goes_to_its_handler_before_message_handlers(tester, bot):
    @bot.on_message()
    def anything(event, ctx):
        ctx.reply(f"message {event.text}")

    @bot.on_quick_reply("LAPTOP")
    def laptop(event, ctx):
        ctx.reply("laptop")

    tester.quick_reply("LAPTOP", "Laptop")
    assert tester.replies[-1].text == "laptop"


def test_unhandled_quick_reply_falls_through_to_message_handlers_with_its_text(tester, bot):
    @bot.on_quick_reply("LAPTOP")
    def laptop(event, ctx):
        ctx.reply("laptop")

    @bot.on_message(r"^Printer$")
    def printer(event, ctx):
        ctx.reply("printer by text")

    tester.quick_reply("PRINTER", "Printer")
    assert tester.replies[-1].text == "printer by text"


def test_on_mention_works_bare_and_with_a_predicate(tester, bot):
    @bot.on_mention(when=lambda event: "urgent" in event.text)
    def urgent(event, ctx):
        ctx.comment("urgent!")

    @bot.on_mention
    def mentioned(event, ctx):
        ctx.comment("on it")

    tester.mention("@demo urgent: printer on fire")
    tester.mention("@demo hi")
    assert [text for _, text in tester.comments] == ["urgent!", "on it"]


def test_on_with_value_filters(tester, bot):
    @bot.on("group", "comments", verb="add", message=re.compile(r".*#it.*"))
    def tagged(event, ctx):
        ctx.comment("tagged")

    @bot.on("group", "comments", verb=lambda verb: verb in ("edit", "delete"))
    def changed(event, ctx):
        ctx.comment(f"{event.verb}ed")

    comment = {"comment_id": "c1", "post_id": "p1", "from": {"id": "7"}, "created_time": 1}
    tester.change("group", "comments", {**comment, "verb": "add", "message": "help #it"})
    tester.change("group", "comments", {**comment, "verb": "add", "message": "nice"})
    tester.change("group", "comments", {**comment, "verb": "edit", "message": "edited"})
    assert tester.comments == [("c1", "tagged"), ("c1", "edited")]
    assert [o.status.value for o in tester.outcomes] == ["handled", "unmatched", "handled"]


def test_on_without_field_takes_every_field_of_the_object(tester, bot):
    seen = []

    @bot.on("workplace_security")
    def security(event, ctx):
        seen.append((event.field, event.event_name))

    tester.change("workplace_security", "admin_activity", {"event": "ADMIN_DEACTIVATE_ACCOUNT", "actor_id": "1"})
    tester.change("workplace_security", "sessions", {"event": "LOG_IN", "target_id": "2"})
    assert seen == [("admin_activity", "ADMIN_DEACTIVATE_ACCOUNT"), ("sessions", "LOG_IN")]


def test_on_page_messages_catches_what_specific_handlers_do_not(tester, bot):
    @bot.on_message(r"^hi")
    def hi(event, ctx):
        ctx.reply("hi")

    @bot.on("page", "messages")
    def other(event, ctx):
        ctx.reply("generic")

    tester.message("hi there")
    tester.message("bye")
    assert [r.text for r in tester.replies] == ["hi", "generic"]


def test_one_function_can_take_several_decorators(tester, bot):
    @bot.on_postback("HUMAN")
    @bot.on_quick_reply("HUMAN")
    def human(event, ctx):
        ctx.reply("a human will answer")

    tester.postback("HUMAN")
    tester.quick_reply("HUMAN")
    assert len(tester.replies) == 2


@pytest.mark.parametrize("name", ["Helpdesk", "help-desk", "1bot", "", "x" * 65])
def test_bot_names_must_make_valid_setting_prefixes(name):
    with pytest.raises(ValueError, match="lower-case"):
        Bot(name)


def test_on_refuses_an_unknown_object(bot):
    with pytest.raises(ValueError, match="unknown webhook object 'calendar'"):
        bot.on("calendar")


def test_subscriptions_are_derived_from_the_handlers(bot):
    bot.on_message()(lambda e, c: None)
    bot.on_postback("X")(lambda e, c: None)
    bot.on_mention(lambda e, c: None)
    bot.on("group", "comments", verb="add")(lambda e, c: None)
    bot.on("user")(lambda e, c: None)
    assert bot.subscriptions() == {"page": {"messages", "messaging_postbacks", "mention"},
                                   "group": {"comments"}, "user": set()}

"""Matchers combine with &, | and ~ and hand their regex match to the handler."""

from __future__ import annotations

from bots import direct, in_group_chat, text


def test_and_keeps_the_regex_match_for_the_handler(tester, bot):
    @bot.on_message(text(r"^ticket (\d+)") & direct)
    def ticket(event, ctx):
        ctx.reply(f"ticket {ctx.match.group(1)} in private")

    @bot.on_message(text(r"^ticket") & in_group_chat)
    def group_ticket(event, ctx):
        ctx.reply("not here, message me")

    tester.message("ticket 12")
    tester.message("ticket 12", thread="t_555")
    assert [r.text for r in tester.replies] == ["ticket 12 in private", "not here, message me"]


def test_or_and_not(tester, bot):
    @bot.on_message(text(r"^(hi|hello)") | text(r"^hey"))
    def greet(event, ctx):
        ctx.reply("hello")

    @bot.on_message(~text(r"\?$"))
    def statement(event, ctx):
        ctx.reply("noted")

    tester.message("hey you")
    tester.message("it is broken")
    tester.message("why?")
    assert [r.text for r in tester.replies] == ["hello", "noted"]


def test_labels_read_as_the_expression():
    assert (text("^a") & ~in_group_chat).label == "(text~'^a' & ~in_group_chat)"

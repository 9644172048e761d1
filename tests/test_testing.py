"""The test kit itself: what a bot author relies on when testing a handler."""

from __future__ import annotations

from bots import Bot
from bots.testing import BotTester, Deliveries, batch


def test_a_handler_test_in_three_lines():
    bot = Bot("greeter")
    bot.on_message(r"^hi")(lambda event, ctx: ctx.reply("hello!"))

    tester = BotTester(bot)
    tester.message("hi")
    assert tester.replies[-1].text == "hello!"


def test_deliveries_are_real_signed_http_requests(tester):
    body = tester.build.message("x")
    assert tester.post(body).status_code == 200
    assert tester.post(body, secret="someone-else").status_code == 403


def test_outcomes_tell_what_became_of_each_item(tester, bot):
    bot.on_postback("A")(lambda e, c: None)
    tester.postback("A")
    tester.postback("B")
    assert [o.status.value for o in tester.outcomes] == ["handled", "unmatched"]


def test_builders_make_every_kind_of_delivery():
    build = Deliveries()
    assert build.message("x")["entry"][0]["messaging"][0]["message"]["text"] == "x"
    assert build.message("x", thread="t_1")["entry"][0]["messaging"][0]["thread"] == {"id": "t_1"}
    assert build.postback("P")["entry"][0]["messaging"][0]["postback"]["payload"] == "P"
    assert build.delivery(["m_1"])["entry"][0]["messaging"][0]["delivery"]["mids"] == ["m_1"]
    assert build.read()["entry"][0]["messaging"][0]["read"]["watermark"]
    assert build.mention(comment_id="c")["entry"][0]["changes"][0]["value"]["item"] == "comment"
    assert build.change("user", "status", {"status": "away"})["object"] == "user"
    assert len(batch(build.message("a"), build.message("b"))["entry"]) == 2
    assert build.message("a")["entry"][0]["messaging"][0]["message"]["mid"] != \
        build.message("a")["entry"][0]["messaging"][0]["message"]["mid"]


def test_graph_failures_can_be_scripted(tester, bot):
    errors = []
    bot.on_message()(lambda e, ctx: ctx.reply("x"))
    bot.error_handler(lambda error, e, c: errors.append(error.code))
    tester.graph.fail_next(code=613, status=400)
    tester.message("rate limited once, retried")
    tester.graph.fail_next("(#100) Invalid parameter", code=100, status=400)
    tester.message("refused for good")
    assert errors == [100]
    assert len(tester.calls) == 3

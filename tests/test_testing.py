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


def test_graph_failures_can_be_scripted(memory_tester, bot):
    errors = []
    bot.on_message()(lambda e, ctx: ctx.reply("x"))
    bot.error_handler(lambda error, e, c: errors.append(error.code))
    memory_tester.graph.fail_next(code=613, status=400)
    memory_tester.message("rate limited once, retried")
    memory_tester.graph.fail_next("(#100) Invalid parameter", code=100, status=400)
    memory_tester.message("refused for good")
    assert errors == [100]
    assert len(memory_tester.calls) == 3


def test_the_kit_runs_production_semantics_a_raising_handler_sends_nothing_until_its_retry(tester, bot):
    attempts = []

    @bot.on_message()
    def flaky(event, ctx):
        attempts.append(event.text)
        ctx.reply("partial answer")
        if len(attempts) == 1:
            raise RuntimeError("first try fails")

    tester.message("hi")
    assert tester.replies == [] and tester.pending == 1, "the failed run's reply is rolled back, its retry waits"
    tester.advance(5)
    assert attempts == ["hi", "hi"]
    assert [reply.text for reply in tester.replies] == ["partial answer"]
    assert tester.pending == 0


def test_an_error_handlers_apology_goes_out_once_when_the_event_is_parked(tester, bot):
    seen = []

    @bot.on_message()
    def broken(event, ctx):
        ctx.reply("half an answer")
        raise RuntimeError("always fails")

    @bot.error_handler
    def apologise(error, event, ctx):
        seen.append((ctx.attempt, ctx.last_attempt))
        ctx.reply("Something went wrong on my side.")

    tester.message("hi")
    for _ in range(6):
        tester.advance(300)
    assert seen == [(1, False), (2, False), (3, False), (4, False), (5, True)]
    assert [reply.text for reply in tester.replies] == ["Something went wrong on my side."]
    assert [letter["error"] for letter in tester.dead_letters] == ["RuntimeError: always fails"]


def test_in_memory_every_run_is_the_last_so_the_apology_goes_out_at_once(memory_tester, bot):
    bot.on_message()(lambda event, ctx: 1 / 0)
    bot.error_handler(lambda error, event, ctx: ctx.reply(f"sorry (attempt {ctx.attempt}, last {ctx.last_attempt})"))
    memory_tester.message("hi")
    assert [reply.text for reply in memory_tester.replies] == ["sorry (attempt 1, last True)"]


def test_the_kit_keeps_state_between_events_as_the_durable_inbox_does(tester, bot):
    @bot.on_message()
    def count(event, ctx):
        ctx.state["seen"] = ctx.state.get("seen", 0) + 1
        ctx.reply(f"seen {ctx.state['seen']}")

    tester.message("a")
    tester.message("b")
    assert [reply.text for reply in tester.replies] == ["seen 1", "seen 2"]

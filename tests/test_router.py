"""Middleware around handlers, error handlers, and the hint for events nobody handles."""

from __future__ import annotations

import logging


def test_middleware_wraps_handlers_first_registered_outermost(tester, bot):
    trace = []

    @bot.middleware
    def outer(event, ctx, call_next):
        trace.append("outer in")
        result = call_next(event, ctx)
        trace.append("outer out")
        return result

    @bot.middleware
    def inner(event, ctx, call_next):
        trace.append("inner in")
        return call_next(event, ctx)

    @bot.on_message()
    def handler(event, ctx):
        trace.append("handler")

    tester.message("x")
    assert trace == ["outer in", "inner in", "handler", "outer out"]


def test_middleware_can_stop_an_event(tester, bot):
    @bot.middleware
    def only_known_people(event, ctx, call_next):
        if event.sender_id != "42":
            return None
        return call_next(event, ctx)

    @bot.on_message()
    def handler(event, ctx):
        ctx.reply("welcome")

    tester.message("hi", sender="7")
    tester.message("hi", sender="42")
    assert [r.recipient for r in tester.replies] == [{"id": "42"}]


def test_middleware_sees_handler_errors(tester, bot):
    seen = []

    @bot.middleware
    def watch(event, ctx, call_next):
        try:
            return call_next(event, ctx)
        except ValueError as error:
            seen.append(str(error))
            raise

    @bot.on_message()
    def handler(event, ctx):
        raise ValueError("bad")

    assert tester.message("x").status_code == 200
    assert seen == ["bad"]
    assert tester.outcomes[-1].status.value == "failed"


def test_every_error_handler_runs_even_when_one_fails(memory_tester, bot, caplog):
    calls = []

    @bot.on_message()
    def handler(event, ctx):
        raise KeyError("k")

    @bot.error_handler
    def first(error, event, ctx):
        calls.append("first")
        raise RuntimeError("error handler broke")

    @bot.error_handler
    def second(error, event, ctx):
        calls.append("second")
        ctx.reply("sorry")

    assert memory_tester.message("x").status_code == 200
    assert calls == ["first", "second"]
    assert memory_tester.replies[-1].text == "sorry"
    assert "error handler first failed too" in caplog.text


def test_a_handler_error_without_error_handlers_is_logged_with_its_traceback(tester, bot, caplog):
    @bot.on_message()
    def fragile(event, ctx):
        raise ZeroDivisionError("division by zero")

    tester.message("x")
    record = next(r for r in caplog.records if "failed on" in r.getMessage())
    assert record.levelno == logging.ERROR
    assert "fragile" in record.getMessage()
    assert record.exc_info is not None


def test_an_unmatched_event_logs_the_decorator_to_add(tester, caplog):
    tester.postback("ORDER_PIZZA")
    tester.change("group", "comments", {"verb": "add", "comment_id": "1", "post_id": "2"})
    lines = [r.getMessage() for r in caplog.records if "no handler" in r.getMessage()]
    assert "@bot.on_postback('ORDER_PIZZA')" in lines[0]
    assert "@bot.on('group', 'comments', verb='add')" in lines[1]
    assert all("handlers/demo.py" in line for line in lines)


def test_the_unmatched_hint_does_not_log_message_text(tester, caplog):
    tester.message("my password is hunter2")
    assert "hunter2" not in caplog.text
    assert "@bot.on_message()" in caplog.text

"""Everything a bot can say or do, on ctx inside a handler and on bot.graph outside one.

Every call goes over real HTTP to a loopback Graph server that records it.
"""

from __future__ import annotations

import pytest

import emulator
from bots import Bot, messages
from bots.executor import InlineExecutor
from bots.flask import make_app
from bots.messages import MessageError
from bots.testing import BotTester, settings_for


def serve_bot(bot: Bot, graph_url: str, data_dir) -> None:
    make_app([bot], {**settings_for(bot), "GRAPH_API_URL": graph_url, "DATA_DIR": str(data_dir)},
             executor=InlineExecutor())


@pytest.fixture
def outside(graph_server, tmp_path):
    """A served bot used from outside any handler, as a scheduled job would."""
    bot = Bot("notifier")
    serve_bot(bot, graph_server.url, tmp_path)
    return bot, graph_server.calls


def made(calls: list[dict]) -> list[tuple]:
    return [(c["method"], c["path"], c["json"]) for c in calls]


def test_send_to_one_person(outside):
    bot, calls = outside
    sent = bot.graph.send("Your laptop is ready", to="100")
    assert sent.message_id == "m_1"
    assert made(calls) == [("POST", "me/messages", {"recipient": {"id": "100"}, "messaging_type": "UPDATE",
                                                    "message": {"text": "Your laptop is ready"}})]
    assert calls[0]["auth"] == "Bearer test-token-notifier" and "appsecret_proof" in calls[0]["args"]


def test_send_to_several_people_returns_the_new_thread(serve, tmp_path):
    bot = Bot("opener")
    url = serve(emulator.create_app(settings_for(bot)))
    serve_bot(bot, url, tmp_path)
    sent = bot.graph.send("Incident room", ids=["100", "200"])
    assert sent.thread_key.startswith("t_") and sent.message_id.startswith("m_emu_")


def test_send_a_template_to_a_thread(outside):
    bot, calls = outside
    card = messages.button_template("Approve the purchase?", [messages.postback_button("Approve", "APPROVE"),
                                                              messages.url_button("Details", "https://x.test/p/1")])
    bot.graph.send(card, thread="t_123")
    assert calls[-1]["json"]["recipient"] == {"thread_key": "t_123"}
    assert calls[-1]["json"]["message"]["attachment"]["payload"]["template_type"] == "button"


@pytest.mark.parametrize("kwargs", [{}, {"to": "1", "thread": "t_1"}, {"ids": []}, {"thread": "123"}])
def test_send_needs_exactly_one_valid_target(outside, kwargs):
    bot, calls = outside
    with pytest.raises(ValueError):
        bot.graph.send("hi", **kwargs)
    assert calls == []


def test_a_message_that_breaks_a_rule_is_not_sent(outside):
    bot, calls = outside
    with pytest.raises(MessageError) as caught:
        bot.graph.send("x" * 2001, to="1")
    assert str(caught.value) == "text: at most 2000 characters"
    with pytest.raises(MessageError):
        bot.graph.send("pick", to="1", quick_replies=[(f"option {n}", f"P{n}") for n in range(14)])
    with pytest.raises(MessageError):
        bot.graph.send({"text": "hi", "quik_replies": []}, to="1")
    assert calls == []


def test_typing_and_seen(outside):
    bot, calls = outside
    bot.graph.typing(to="1")
    bot.graph.typing(False, to="1")
    bot.graph.mark_seen(thread="t_5")
    assert [c["json"]["sender_action"] for c in calls] == ["typing_on", "typing_off", "mark_seen"]
    assert calls[-1]["json"]["recipient"] == {"thread_key": "t_5"}


def test_group_actions(outside):
    bot, calls = outside
    bot.graph.post("555", "**Maintenance** tonight", markdown=True)
    bot.graph.comment("Done", target="555_1")
    bot.graph.like("555_1")
    bot.graph.rename_thread("Incident 42", thread="t_9")
    bot.graph.add_participants(["1", "2"], thread="t_9")
    bot.graph.remove_participants(["2"], thread="t_9")
    assert made(calls) == [
        ("POST", "555/feed", {"message": "**Maintenance** tonight", "formatting": "MARKDOWN"}),
        ("POST", "555_1/comments", {"message": "Done"}),
        ("POST", "555_1/likes", {}),
        ("POST", "t_9/threadname", {"name": "Incident 42"}),
        ("POST", "t_9/participants", {"to": ["1", "2"]}),
        ("DELETE", "t_9/participants", {"to": ["2"]}),
    ]


def test_get_reads_any_object_with_fields(outside):
    bot, calls = outside
    bot.graph.get("100", fields=["name", "email"])
    assert calls[-1]["method"] == "GET" and calls[-1]["path"] == "100"
    assert calls[-1]["args"]["fields"] == "name,email"


def test_ids_cannot_smuggle_paths(outside):
    bot, calls = outside
    with pytest.raises(ValueError):
        bot.graph.like("1/../../app/subscriptions")
    assert calls == []


def test_bot_graph_before_any_app_serves_the_bot_says_so():
    with pytest.raises(RuntimeError, match="not served yet"):
        Bot("lonely").graph.send("hi", to="1")


def test_ctx_defaults_to_the_conversation_of_the_event(graph_server, bot):
    @bot.on_message()
    def handler(event, ctx):
        ctx.typing()
        ctx.mark_seen()
        ctx.send("one")
        ctx.send("to someone else", to="999")
        ctx.rename_thread("Printer problems")
        ctx.add_participants(["777"])

    BotTester(bot, graph_url=graph_server.url).message("hi", thread="t_42")
    summary = [(c["path"], c["json"].get("recipient"), c["json"].get("sender_action") or c["json"].get("name"))
               for c in graph_server.calls]
    thread = {"thread_key": "t_42"}
    assert summary == [("me/messages", thread, "typing_on"), ("me/messages", thread, "mark_seen"),
                       ("me/messages", thread, None), ("me/messages", {"id": "999"}, None),
                       ("t_42/threadname", None, "Printer problems"), ("t_42/participants", None, None)]
    assert graph_server.calls[2]["json"]["messaging_type"] == "RESPONSE"


def test_ctx_sent_records_the_handlers_effects(tester, bot):
    seen = []

    @bot.on_message()
    def handler(event, ctx):
        ctx.reply("a")
        ctx.reply("b")
        seen.extend(call["body"]["message"]["text"] for call in ctx.sent)

    tester.message("x")
    assert seen == ["a", "b"]


def test_thread_actions_outside_a_group_chat_ask_for_the_thread(tester, bot):
    errors = []
    bot.on_message()(lambda event, ctx: ctx.rename_thread("x"))
    bot.error_handler(lambda error, event, ctx: errors.append(str(error)))
    tester.message("hi")
    assert "did not come from a group chat" in errors[0]

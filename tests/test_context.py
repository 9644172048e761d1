"""ctx.reply and ctx.comment answer where the event came from."""

from __future__ import annotations

import pytest


@pytest.fixture
def answering(bot):
    @bot.on_message()
    def reply(event, ctx):
        ctx.reply("ok", quick_replies=[("Yes", "YES"), {"title": "No", "payload": "NO", "image_url": "https://x/n.png"}])

    @bot.on_mention
    def mention(event, ctx):
        ctx.comment("seen")

    @bot.on("group", "posts")
    def post(event, ctx):
        ctx.reply("thanks for posting")

    return bot


def test_reply_in_a_1to1_chat_goes_to_the_sender(tester, answering):
    tester.message("hi", sender="555")
    sent = tester.calls[-1]
    assert sent.method == "POST" and sent.path == "me/messages"
    assert sent.body["recipient"] == {"id": "555"}
    assert sent.body["messaging_type"] == "RESPONSE"


def test_reply_in_a_group_chat_goes_to_the_thread(tester, answering):
    tester.message("hi", sender="555", thread="t_100200")
    assert tester.replies[-1].recipient == {"thread_key": "t_100200"}


def test_quick_replies_take_pairs_or_dicts(tester, answering):
    tester.message("hi")
    assert tester.replies[-1].quick_replies == [
        {"content_type": "text", "title": "Yes", "payload": "YES"},
        {"content_type": "text", "title": "No", "payload": "NO", "image_url": "https://x/n.png"},
    ]


def test_comment_on_a_mention_in_a_post_goes_under_the_post(tester, answering):
    tester.mention(post_id="111_222")
    assert tester.comments == [("111_222", "seen")]


def test_comment_on_a_mention_in_a_comment_goes_under_the_comment(tester, answering):
    tester.mention(post_id="111_222", comment_id="333")
    assert tester.comments == [("333", "seen")]


def test_reply_to_a_group_post_is_a_comment(tester, answering):
    tester.change("group", "posts", {"verb": "add", "post_id": "9_8", "message": "hello", "from": {"id": "1"}})
    assert tester.comments == [("9_8", "thanks for posting")]


def test_graph_calls_carry_the_bearer_token_and_a_timed_proof(tester, answering):
    tester.message("hi")
    call = tester.calls[-1]
    assert call.headers["Authorization"] == "Bearer test-token-demo"
    assert set(call.params) == {"appsecret_proof", "appsecret_time"}


def test_misuse_fails_in_the_handler_with_a_clear_message(tester, bot):
    errors = []

    @bot.on_message(r"^comment")
    def bad_comment(event, ctx):
        ctx.comment("x")

    @bot.on_message(r"^empty")
    def empty(event, ctx):
        ctx.reply("   ")

    @bot.error_handler
    def keep(error, event, ctx):
        errors.append(str(error))

    tester.message("comment please")
    tester.message("empty")
    assert "use ctx.reply in chat" in errors[0]
    assert errors[1] == "text: must not be empty"
    assert tester.calls == []


def test_a_graph_error_reaches_the_error_handler(tester, bot):
    errors = []

    @bot.on_message()
    def reply(event, ctx):
        ctx.reply("hi")

    @bot.error_handler
    def keep(error, event, ctx):
        errors.append(error)

    tester.graph.fail_next("(#551) This person isn't available right now.", code=551, status=400)
    tester.message("x")
    assert errors[0].code == 551 and errors[0].retryable is False

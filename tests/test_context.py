"""ctx.reply and ctx.comment answer where the event came from."""

from __future__ import annotations

import pytest

from bots import Ref, UnresolvedRef
from bots.refs import Run


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


def test_a_graph_error_reaches_the_error_handler(memory_tester, bot):
    errors = []

    @bot.on_message()
    def reply(event, ctx):
        ctx.reply("hi")

    @bot.error_handler
    def keep(error, event, ctx):
        errors.append(error)

    memory_tester.graph.fail_next("(#551) This person isn't available right now.", code=551, status=400)
    memory_tester.message("x")
    assert errors[0].code == 551 and errors[0].retryable is False


def test_with_no_outbox_a_comment_on_a_new_post_goes_under_its_real_id(memory_tester, bot):
    returned = []

    @bot.on_message()
    def announce(event, ctx):
        post = ctx.post("555", "Maintenance tonight")
        returned.append(post)
        ctx.comment("Starts at 22:00", target=post)
        ctx.like(post)
        ctx.graph.comment("Done", target=post)

    memory_tester.message("go")
    assert [(c.method, c.path) for c in memory_tester.calls] == [("POST", "555/feed"), ("POST", "1/comments"),
                                                        ("POST", "1/likes"), ("POST", "1/comments")]
    assert isinstance(returned[0], Ref) and returned[0].known and returned[0].value == "1"


def test_with_no_outbox_a_new_group_chat_is_renamed_joined_and_used_by_its_real_key(memory_tester, bot):
    returned = []

    @bot.on_message()
    def open_room(event, ctx):
        sent = ctx.send("Incident room", ids=["100071", "100072"])
        returned.append(sent)
        ctx.rename_thread("Incident 42", thread=sent.thread_key)
        ctx.add_participants(["100073"], thread=sent.thread_key)
        ctx.send("Carol joins", thread=sent.thread_key)

    memory_tester.message("go")
    assert [c.path for c in memory_tester.calls[1:3]] == ["t_1/threadname", "t_1/participants"]
    assert memory_tester.replies[-1].recipient == {"thread_key": "t_1"}
    assert returned[0].message_id.value == "m_sent_1" and returned[0].thread_key.value == "t_1"


def test_reply_returns_handles_to_the_answer(memory_tester, bot):
    returned = []
    bot.on_message()(lambda event, ctx: returned.append(ctx.reply("hi")))
    bot.on("group", "posts")(lambda event, ctx: returned.append(ctx.reply("thanks")))
    memory_tester.message("x", sender="555")
    memory_tester.change("group", "posts", {"verb": "add", "post_id": "9_8", "message": "hello", "from": {"id": "1"}})
    sent, comment = returned
    assert (sent.message_id.value, sent.recipient_id.value) == ("m_sent_1", "555")
    assert isinstance(comment, Ref) and comment.value == "2"


def test_a_handle_the_answer_lacks_fails_at_once_as_it_would_in_the_sender(memory_tester, bot):
    errors = []

    @bot.on_message(r"^one")
    def one_to_one(event, ctx):
        sent = ctx.send("hi", to="100071")
        assert sent.thread_key.known and sent.thread_key.value is None
        ctx.send("again", thread=sent.thread_key)

    @bot.on_message(r"^wrong")
    def wrong_field(event, ctx):
        ctx.rename_thread("x", thread=ctx.send("hi", ids=["1", "2"]).message_id)

    bot.error_handler(lambda error, event, ctx: errors.append(error))
    memory_tester.message("one")
    memory_tester.message("wrong")
    assert isinstance(errors[0], UnresolvedRef) and "no thread_key" in str(errors[0])
    assert isinstance(errors[1], ValueError) and "thread_key" in str(errors[1])
    assert [c.path for c in memory_tester.calls] == ["me/messages", "me/messages"]


def test_ctx_sent_records_the_call_with_the_real_id(memory_tester, bot):
    seen = []

    @bot.on_message()
    def handler(event, ctx):
        ctx.comment("x", target=ctx.post("555", "y"))
        seen.extend((call["path"], call["answer"]) for call in ctx.sent)

    memory_tester.message("go")
    assert seen == [("555/feed", {"id": "1"}), ("1/comments", {"id": "2"})]


def test_bot_graph_returns_plain_values_and_takes_only_known_handles(memory_tester, bot):
    kept = []

    @bot.on_message()
    def handler(event, ctx):
        kept.append(ctx.post("555", "y"))

    memory_tester.message("go")
    assert bot.graph.post("555", "z") == "2"
    bot.graph.comment("from a job", target=kept[0])
    assert memory_tester.comments[-1] == ("1", "from a job")
    pending = Ref(Run(), 0, "id")
    with pytest.raises(ValueError, match="still in its handler run's outbox"):
        bot.graph.like(pending)
    with pytest.raises(ValueError, match="not a Graph id"):
        bot.graph.like("{$ref:0.id}")

"""Effects that build on each other: handles under the outbox, placeholders and resolve()."""

from __future__ import annotations

import json

import pytest

from bots import Ref, UnresolvedRef
from bots.envelope import parse
from bots.outbox import Effect, Outbox, resolve
from bots.router import Status
from bots.testing import GRAPH_URL, BotTester, GraphRecorder

GROUP, ALICE, BOB, CAROL = "555", "100071", "100072", "100073"
SEND = {"recipient_id": ALICE, "message_id": "m_1", "thread_key": "t_77"}


def queued(tester: BotTester, body: dict | None = None) -> list[Effect]:
    """Run the bot's handler for ``body`` (a chat message by default) with an outbox, as the durable inboxes do."""
    outbox = Outbox()
    _, items = parse(json.dumps(body or tester.build.message("go")).encode())
    outcome = tester.app.extensions["bots"].dispatcher.run(tester.bot.name, items[0], outbox=outbox)
    assert outcome.status is Status.HANDLED, outcome.error
    return outbox.effects


def deliver(effects: list[Effect]) -> GraphRecorder:
    """Send ``effects`` in order as a sender would: each resolved against the answers before it."""
    graph, answers = GraphRecorder(), []
    session = graph.session()
    for effect in effects:
        made = resolve(effect, answers)
        answers.append(session.request(made.method, f"{GRAPH_URL}/{made.path}", json=made.body).json())
    return graph


@pytest.fixture
def announcing(bot):
    """Post in a group, then comment on, like and comment again on that post."""
    returned = []

    @bot.on_message()
    def announce(event, ctx):
        post = ctx.post(GROUP, "Maintenance tonight")
        returned.append(post)
        ctx.comment("Starts at 22:00", target=post)
        ctx.like(post)
        ctx.graph.comment("Done", target=post)

    return returned


@pytest.fixture
def opening(bot):
    """Open a group chat, then name it, add someone and talk there."""
    returned = []

    @bot.on_message()
    def open_room(event, ctx):
        sent = ctx.send("Incident room", ids=[ALICE, BOB])
        returned.append(sent)
        ctx.rename_thread("Incident 42", thread=sent.thread_key)
        ctx.add_participants([CAROL], thread=sent.thread_key)
        ctx.send("Carol joins", thread=sent.thread_key)

    return returned


def test_a_comment_on_a_new_post_waits_for_the_posts_id(tester, announcing):
    effects = queued(tester)
    assert tester.calls == []
    assert [effect.path for effect in effects] == ["555/feed", "{$ref:0.id}/comments", "{$ref:0.id}/likes",
                                                   "{$ref:0.id}/comments"]
    post = announcing[0]
    assert isinstance(post, Ref) and post.value is None and not post.known
    answers = [{"id": "555_9"}]
    assert resolve(effects[1], answers) == Effect("POST", "555_9/comments", {"message": "Starts at 22:00"})
    assert resolve(effects[2], answers) == Effect("POST", "555_9/likes", {})
    assert resolve(effects[3], [*answers, {"id": "c_1"}, {"success": True}]).path == "555_9/comments"


def test_a_group_send_is_queued_and_its_thread_is_renamed_joined_and_used(tester, opening):
    effects = queued(tester)
    assert tester.calls == []
    assert effects[0].body["recipient"] == {"ids": [ALICE, BOB]}
    assert [effect.path for effect in effects[1:3]] == ["{$ref:0.thread_key}/threadname",
                                                        "{$ref:0.thread_key}/participants"]
    assert effects[3].body["recipient"] == {"thread_key": {"$ref": [0, "thread_key"]}}
    answers = [SEND, {"success": True}, {"success": True}]
    assert resolve(effects[1], answers) == Effect("POST", "t_77/threadname", {"name": "Incident 42"})
    assert resolve(effects[2], answers) == Effect("POST", "t_77/participants", {"to": [CAROL]})
    assert resolve(effects[3], answers).body["recipient"] == {"thread_key": "t_77"}
    assert resolve(effects[3], answers).body["message"] == {"text": "Carol joins"}


def test_a_missing_answer_or_field_is_an_unresolved_ref_naming_effect_and_field(tester, opening):
    rename = queued(tester)[1]
    for answers in ([], [None], [{"recipient_id": ALICE, "message_id": "m_1"}]):
        with pytest.raises(UnresolvedRef) as caught:
            resolve(rename, answers)
        assert "thread_key of effect 0" in str(caught.value) and "{$ref:0.thread_key}/threadname" in str(caught.value)
        assert "Incident" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_an_answer_cannot_smuggle_a_path(tester, announcing):
    with pytest.raises(UnresolvedRef):
        resolve(queued(tester)[1], [{"id": "1/../app/subscriptions"}])


def test_effects_with_placeholders_survive_the_journals_json(tester, opening):
    for effect in queued(tester):
        stored = Effect.from_dict(json.loads(json.dumps(effect.to_dict())))
        assert stored == effect
        assert resolve(stored, [SEND]) == resolve(effect, [SEND])
        assert "Incident" not in stored.describe() and "Carol" not in stored.describe()


def test_an_effect_without_handles_resolves_to_itself():
    effect = Effect("POST", "me/messages", {"recipient": {"id": ALICE}, "message": {"text": "hi"}})
    assert resolve(effect, []) is effect
    assert effect.refers_to() == []


def test_refers_to_lists_the_answers_an_effect_needs(tester, opening):
    assert [effect.refers_to() for effect in queued(tester)] == [
        [], [(0, "thread_key")], [(0, "thread_key")], [(0, "thread_key")]]


@pytest.mark.parametrize("handler", ["announcing", "opening"])
def test_the_same_handler_makes_the_same_calls_at_once_or_through_the_outbox(request, bot, handler):
    request.getfixturevalue(handler)
    later = deliver(queued(BotTester(bot)))
    at_once = BotTester(bot)
    at_once.message("go")
    assert at_once.outcomes[-1].status is Status.HANDLED
    assert [(c.method, c.path, c.body) for c in later.calls] == [(c.method, c.path, c.body) for c in at_once.calls]


def test_a_handle_from_another_run_is_refused_in_the_handler(tester, bot):
    kept, errors = [], []

    @bot.on_message(r"^post")
    def post(event, ctx):
        kept.append(ctx.post(GROUP, "hello"))

    @bot.on_message(r"^comment")
    def comment(event, ctx):
        ctx.comment("late", target=kept[0])

    bot.error_handler(lambda error, event, ctx: errors.append(error))
    queued(tester, tester.build.message("post"))
    run = Outbox()
    _, items = parse(json.dumps(tester.build.message("comment")).encode())
    tester.app.extensions["bots"].dispatcher.run(bot.name, items[0], outbox=run)
    assert run.effects == []
    assert isinstance(errors[0], ValueError) and "another handler run" in str(errors[0])


def test_a_handle_made_before_the_handler_failed_is_void_in_the_error_handler(tester, bot):
    made, refused = [], []

    @bot.on_message()
    def fails(event, ctx):
        made.append(ctx.post(GROUP, "hello"))
        raise RuntimeError("boom")

    @bot.error_handler
    def apologise(error, event, ctx):
        try:
            ctx.comment("sorry", target=made[0])
        except ValueError as error:
            refused.append(error)

    outbox = Outbox()
    _, items = parse(json.dumps(tester.build.message("x")).encode())
    tester.app.extensions["bots"].dispatcher.run(bot.name, items[0], outbox=outbox)
    assert outbox.effects == []
    assert "another handler run" in str(refused[0])

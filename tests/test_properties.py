"""Property tests: whatever arrives, the webhook answers with a 2xx or 4xx JSON status, never a 5xx."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots import Bot
from bots.signature import sign
from bots.testing import BotTester

bot = Bot("fuzz")


@bot.on_message()
@bot.on_postback()
@bot.on_quick_reply()
@bot.on_mention
def answer(event, ctx):
    ctx.reply(event.text or "?")


@bot.on("group")
@bot.on("link")
@bot.on("user")
@bot.on("workplace_security")
def comment(event, ctx):
    ctx.comment("seen")


tester = BotTester(bot, settings={"INBOX": "memory"})  # every item has an outcome here, a redelivery too
SECRET = tester.secret()
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
ids = st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans())
refs = st.one_of(st.fixed_dictionaries({"id": ids}), json_values)
messaging_items = st.fixed_dictionaries(
    {"sender": refs},
    optional={"recipient": refs, "thread": refs, "timestamp": json_values,
              "message": st.fixed_dictionaries({}, optional={"mid": ids, "text": json_values, "is_echo": json_values,
                                                             "quick_reply": json_values, "attachments": json_values}),
              "postback": json_values, "delivery": json_values, "read": json_values},
)
fields = st.sampled_from(["messages", "mention", "posts", "comments", "membership", "status", "events",
                          "admin_activity", "sessions", "preview", "collection", "other"])
change_items = st.fixed_dictionaries({"field": fields, "value": st.one_of(json_values, st.dictionaries(
    st.sampled_from(["verb", "post_id", "comment_id", "message", "from", "member", "actor", "user", "link",
                     "community", "event", "actor_id", "message_tags"]), json_values, max_size=6))})
entries = st.fixed_dictionaries({}, optional={"id": ids, "time": json_values,
                                              "messaging": st.lists(messaging_items, max_size=3) | json_values,
                                              "changes": st.lists(change_items, max_size=3) | json_values})
envelopes = st.fixed_dictionaries(
    {"object": st.sampled_from(["page", "group", "user", "workplace_security", "link", "other"]) | json_values},
    optional={"entry": st.lists(entries, max_size=3) | json_values})


def post(raw: bytes, headers: dict[str, str]):
    return tester.client.post("/webhooks/fuzz", data=raw, headers=headers)


@FAST
@given(st.binary(max_size=300), st.dictionaries(
    st.sampled_from(["X-Hub-Signature-256", "X-Hub-Signature", "Content-Type", "Content-Length"]),
    st.text(max_size=80), max_size=3))
def test_random_bytes_and_headers_never_give_a_5xx(body, headers):
    try:
        response = post(body, headers)
    except ValueError:  # werkzeug refuses some header values before the app sees them
        return
    assert response.status_code in (400, 403, 411, 413)
    assert "error" in response.json


@FAST
@given(json_values)
def test_any_signed_json_gets_200_or_a_400_naming_the_problem(document):
    raw = json.dumps(document).encode()
    response = post(raw, {"X-Hub-Signature-256": sign(raw, SECRET)})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json["error"]["message"]


@FAST
@given(envelopes)
def test_signed_envelope_shapes_never_fail_inside(document):
    raw = json.dumps(document).encode()
    before = len(tester.outcomes)
    response = post(raw, {"X-Hub-Signature-256": sign(raw, SECRET)})
    assert response.status_code in (200, 400)
    if response.status_code == 200 and document.get("object") == "link":
        assert isinstance(response.json["data"], list)
    elif response.status_code == 200:
        assert len(tester.outcomes) - before == response.json["received"]


@FAST
@given(envelopes)
def test_the_hot_path_shortcut_agrees_with_the_envelope_schema(document):
    from unittest import mock

    from bots import envelope
    from bots.errors import WebhookError

    raw = json.dumps(document).encode()

    def outcome():
        try:
            return envelope.parse(raw)
        except WebhookError as error:
            return (error.status, error.field)

    shortcut = outcome()
    with mock.patch.object(envelope, "_well_formed", return_value=False):
        assert outcome() == shortcut

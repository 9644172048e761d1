"""The webhook endpoint end to end through the app: handshake, verification, and every bad input."""

from __future__ import annotations

import json
import logging

import pytest

from bots import Bot
from bots.executor import ThreadPoolExecutor
from bots.flask import make_app
from bots.testing import BotTester, batch, settings_for


@pytest.fixture
def echo(bot: Bot) -> Bot:
    @bot.on_message()
    def answer(event, ctx):
        ctx.reply(f"you said {event.text}")
    return bot


def test_handshake_answers_the_challenge_as_plain_text(tester):
    response = tester.handshake(challenge="1158201444")
    assert response.status_code == 200
    assert response.data == b"1158201444"
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize("query", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "x"},
    {"hub.mode": "subscribe", "hub.challenge": "x"},
    {"hub.mode": "unsubscribe", "hub.verify_token": "test-verify-demo", "hub.challenge": "x"},
    {"hub.verify_token": "test-verify-demo", "hub.challenge": "x"},
])
def test_handshake_refuses_wrong_token_or_mode_with_403(tester, query):
    response = tester.client.get("/webhooks/demo", query_string=query)
    assert response.status_code == 403
    assert response.json["error"]["field"] in ("hub.verify_token", "hub.mode")


def test_handshake_works_on_a_per_topic_url(tester):
    response = tester.client.get("/webhooks/demo/group", query_string={
        "hub.mode": "subscribe", "hub.verify_token": "test-verify-demo", "hub.challenge": "c"})
    assert response.data == b"c"


def test_a_signed_message_is_answered_200_and_handled(tester, echo):
    response = tester.message("help")
    assert response.status_code == 200
    assert response.json == {"received": 1}
    assert tester.replies[-1].text == "you said help"


def test_sha1_signature_is_accepted_when_sha256_is_absent(tester, echo):
    response = tester.post(tester.build.message("old style"), algorithm="sha1")
    assert response.status_code == 200
    assert tester.replies[-1].text == "you said old style"


def test_sha256_is_preferred_so_a_wrong_sha256_fails_even_with_a_right_sha1(tester, echo):
    body = json.dumps(tester.build.message("x")).encode()
    from bots.signature import sign
    response = tester.post(body, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64,
                                          "X-Hub-Signature": sign(body, tester.secret(), "sha1")})
    assert response.status_code == 403
    assert tester.calls == []


def test_previous_secret_still_verifies_during_rotation(echo):
    tester = BotTester(echo, settings={"DEMO_APP_SECRET_PREVIOUS": "the-old-secret"})
    assert tester.post(tester.build.message("a"), secret="the-old-secret").status_code == 200
    assert tester.post(tester.build.message("b"), secret="some-other-secret").status_code == 403
    assert [r.text for r in tester.replies] == ["you said a"]


def test_uppercase_hex_digest_is_accepted(tester, echo):
    body = json.dumps(tester.build.message("caps")).encode()
    from bots.signature import sign
    digest = sign(body, tester.secret()).split("=", 1)[1].upper()
    assert tester.post(body, algorithm=None, headers={"X-Hub-Signature-256": f"sha256={digest}"}).status_code == 200


@pytest.mark.parametrize("headers, reason", [
    ({}, "missing signature"),
    ({"X-Hub-Signature-256": "sha256=" + "ab" * 32}, "does not match"),
    ({"X-Hub-Signature-256": "sha256=zz"}, "malformed"),
    ({"X-Hub-Signature-256": "md5=" + "ab" * 16}, "malformed"),
    ({"X-Hub-Signature-256": ""}, "malformed"),
    ({"X-Hub-Signature": "sha1=" + "ab" * 20}, "does not match"),
    ({"X-Hub-Signature": "sha256=" + "ab" * 32}, "malformed"),
])
def test_bad_signatures_get_403_json_and_run_nothing(tester, echo, headers, reason):
    response = tester.post(tester.build.message("help"), algorithm=None, headers=headers)
    assert response.status_code == 403
    assert reason in response.json["error"]["message"]
    assert tester.outcomes == [] and tester.calls == []


def test_wrong_secret_gets_403(tester, echo):
    assert tester.post(tester.build.message("x"), secret="not-the-secret").status_code == 403


def test_body_over_the_limit_gets_413(echo):
    tester = BotTester(echo, settings={"WEBHOOK_MAX_BYTES": "1024"})
    response = tester.message("x" * 2000)
    assert response.status_code == 413
    assert "1024 bytes" in response.json["error"]["message"]
    assert tester.outcomes == []


@pytest.mark.parametrize("body, message", [
    (b"\xff\xfe{}", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b"", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"text"', "JSON object"),
])
def test_undecodable_bodies_get_400_json(tester, body, message):
    response = tester.post(body)
    assert response.status_code == 400
    assert message in response.json["error"]["message"]


@pytest.mark.parametrize("body, field", [
    ({"entry": []}, "object"),
    ({"object": "page"}, "entry"),
    ({"object": "page", "entry": {}}, "entry"),
    ({"object": 7, "entry": []}, "object"),
    ({"object": "page", "entry": [3]}, "entry[0]"),
    ({"object": "page", "entry": [{"messaging": {}}]}, "entry[0].messaging"),
    ({"object": "group", "entry": [{"changes": [{"value": {}}]}]}, "entry[0].changes[0].field"),
    ({"object": "group", "entry": [{"changes": [{"field": "posts"}]}]}, "entry[0].changes[0].value"),
])
def test_json_that_is_not_an_envelope_gets_400_naming_the_field(tester, body, field):
    response = tester.post(body)
    assert response.status_code == 400
    assert response.json["error"]["field"] == field


def test_unknown_bot_gets_404(tester):
    response = tester.post(tester.build.message("x"), bot="nobody")
    assert response.status_code == 404
    assert response.json["error"]["field"] == "bot"


def test_unknown_topic_in_path_gets_404(tester):
    assert tester.post(tester.build.message("x"), topic="calendar").status_code == 404


def test_delivery_to_another_topics_url_gets_400(tester):
    response = tester.post(tester.build.message("x"), topic="group")
    assert response.status_code == 400
    assert response.json["error"]["field"] == "object"


def test_per_topic_url_takes_its_topic(tester, echo):
    assert tester.post(tester.build.message("x"), topic="page").status_code == 200
    assert tester.replies[-1].text == "you said x"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_method_gets_405_json(tester, method):
    response = tester.client.open("/webhooks/demo", method=method)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert "not allowed" in response.json["error"]["message"]


def test_unknown_url_gets_404_json(tester):
    response = tester.client.get("/nowhere")
    assert response.status_code == 404
    assert response.json["error"]["message"]


def test_every_item_of_a_batch_is_handled_in_order(tester, echo):
    build = tester.build
    body = batch(build.message("one"), build.message("two", sender="2"), build.message("three"))
    body["entry"][0]["messaging"].append(build.message("four")["entry"][0]["messaging"][0])
    response = tester.post(body)
    assert response.json == {"received": 4}
    assert [r.text for r in tester.replies] == ["you said one", "you said two", "you said four", "you said three"]


def test_a_handler_exception_still_answers_200_and_reaches_the_error_handler(tester, bot):
    errors = []

    @bot.on_message()
    def broken(event, ctx):
        raise RuntimeError("boom")

    @bot.error_handler
    def failed(error, event, ctx):
        errors.append((str(error), event.text))

    assert tester.message("hi").status_code == 200
    assert errors == [("boom", "hi")]


def test_a_malformed_item_is_skipped_and_its_batch_mates_handled(tester, echo):
    body = tester.build.message("good")
    body["entry"][0]["messaging"].insert(0, {"recipient": {"id": "1"}, "message": {"text": "no sender"}})
    response = tester.post(body)
    assert response.status_code == 200
    assert [o.status.value for o in tester.outcomes] == ["invalid", "handled"]
    assert [r.text for r in tester.replies] == ["you said good"]


def test_a_full_handler_queue_answers_503_and_accepts_nothing(echo):
    env = {"GRAPH_API_URL": "http://127.0.0.1:9", **settings_for(echo)}
    executor = ThreadPoolExecutor(workers=1, limit=2)
    app = make_app([echo], env, executor=executor)
    tester = BotTester(echo)
    body = batch(tester.build.message("1"), tester.build.message("2"), tester.build.message("3"))
    raw = json.dumps(body).encode()
    from bots.signature import sign
    response = app.test_client().post("/webhooks/demo", data=raw,
                                      headers={"X-Hub-Signature-256": sign(raw, "test-secret-demo")})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert executor.pending == 0
    executor.shutdown()


def test_no_secret_appears_in_logs_or_error_bodies(tester, echo, caplog):
    caplog.set_level(logging.DEBUG)
    bodies = [
        tester.post(tester.build.message("x"), secret="wrong").get_data(as_text=True),
        tester.post(b"{").get_data(as_text=True),
        tester.handshake("guess").get_data(as_text=True),
        tester.post(tester.build.message("x"), algorithm=None).get_data(as_text=True),
    ]
    tester.graph.fail_next("Invalid OAuth access token.", code=190, status=401)
    tester.message("x")
    text = caplog.text + "".join(bodies)
    for secret in tester.env.values():
        if secret.startswith("test-"):
            assert secret not in text

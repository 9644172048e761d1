"""The Graph client against a real HTTP server on loopback that records calls and answers errors."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from flask import Flask, jsonify, request

from bots.errors import GraphError
from bots.graph import GraphClient

TOKEN = "DQVJ-test-access-token"
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def graph(serve):
    """A loopback Graph server: ``graph.answer`` sets the next answer; ``graph.calls`` records requests."""
    app = Flask("fake-graph")
    app.calls = []
    app.answer = (200, {"recipient_id": "1", "message_id": "m_1"}, 0.0)

    @app.route("/<path:path>", methods=["GET", "POST", "DELETE"])
    def anything(path):
        app.calls.append({"method": request.method, "path": path, "args": request.args.to_dict(),
                          "auth": request.headers.get("Authorization"), "json": request.get_json(silent=True)})
        status, body, delay = app.answer
        time.sleep(delay)
        if isinstance(body, str):
            return body, status
        response = jsonify(body)
        response.status_code = status
        return response

    app.url = serve(app)
    return app


def client(graph, **kwargs) -> GraphClient:
    return GraphClient(graph.url, TOKEN, SECRET, **kwargs)


def test_post_sends_json_with_bearer_token_and_timed_proof(graph):
    answer = client(graph).post("me/messages", {"recipient": {"id": "1"}, "message": {"text": "hi"}})
    assert answer == {"recipient_id": "1", "message_id": "m_1"}
    call = graph.calls[-1]
    assert call["method"] == "POST" and call["path"] == "me/messages"
    assert call["auth"] == f"Bearer {TOKEN}"
    assert call["json"]["message"] == {"text": "hi"}
    at = call["args"]["appsecret_time"]
    assert abs(int(at) - time.time()) < 5
    assert call["args"]["appsecret_proof"] == hmac.new(SECRET.encode(), f"{TOKEN}|{at}".encode(),
                                                       hashlib.sha256).hexdigest()


def test_classic_proof_and_no_proof(graph):
    client(graph, proof="classic").get("me")
    assert graph.calls[-1]["args"] == {
        "appsecret_proof": hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()}
    client(graph, proof="off").get("me")
    assert graph.calls[-1]["args"] == {}


def test_get_joins_fields_and_keeps_a_version_prefix(serve, graph):
    GraphClient(graph.url + "/v18.0", TOKEN, SECRET).get("12345", fields=["name", "email"])
    call = graph.calls[-1]
    assert call["path"] == "v18.0/12345"
    assert call["args"]["fields"] == "name,email"


def test_a_graph_error_is_raised_with_its_fields_and_without_the_token(graph):
    graph.answer = (400, {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100,
                                    "error_subcode": 2018001, "fbtrace_id": "AbCdEf"}}, 0)
    with pytest.raises(GraphError) as caught:
        client(graph).post("me/messages", {})
    error = caught.value
    assert (error.code, error.subcode, error.type, error.fbtrace_id, error.status) == (
        100, 2018001, "OAuthException", "AbCdEf", 400)
    assert error.retryable is False
    assert TOKEN not in str(error) and SECRET not in str(error)


@pytest.mark.parametrize("status, code, retryable", [
    (400, 4, True), (400, 17, True), (400, 613, True), (400, 80001, True), (500, 1, True), (503, 2, True),
    (400, 100, False), (401, 190, False), (403, 10, False), (403, 200, False), (400, 551, False),
])
def test_retryable_follows_the_protocol_codes(graph, status, code, retryable):
    graph.answer = (status, {"error": {"message": "x", "code": code}}, 0)
    with pytest.raises(GraphError) as caught:
        client(graph).post("me/messages", {})
    assert caught.value.retryable is retryable


def test_a_5xx_without_a_graph_body_is_a_retryable_error(graph):
    graph.answer = (502, "<html>bad gateway</html>", 0)
    with pytest.raises(GraphError) as caught:
        client(graph).post("me/messages", {})
    assert caught.value.status == 502 and caught.value.retryable


def test_a_slow_server_times_out_as_a_retryable_error_naming_no_secret(graph):
    graph.answer = (200, {"ok": True}, 1.5)
    with pytest.raises(GraphError) as caught:
        client(graph, timeout=0.3).post("me/messages", {})
    assert "no answer" in str(caught.value) and caught.value.retryable
    assert TOKEN not in str(caught.value)


def test_nobody_listening_is_a_retryable_error():
    with pytest.raises(GraphError) as caught:
        GraphClient("http://127.0.0.1:9", TOKEN, SECRET).post("me/messages", {})
    assert caught.value.retryable and caught.value.status is None

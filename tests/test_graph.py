"""The Graph client against a real HTTP server on loopback that records calls and answers errors."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from bots.errors import GraphError
from bots.graph import GraphClient, RetryPolicy

TOKEN = "DQVJ-test-access-token"
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def graph(graph_server):
    return graph_server


class Sleeps(list):
    """Stands in for time.sleep and records each pause, so backoff is checked without waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(graph, **kwargs) -> GraphClient:
    kwargs.setdefault("retry", RetryPolicy(attempts=1))
    return GraphClient(graph.url, TOKEN, SECRET, **kwargs)


def retrying(graph, sleeps: Sleeps, attempts: int = 4) -> GraphClient:
    return client(graph, retry=RetryPolicy(attempts=attempts, base_delay=0.5, max_delay=8), sleep=sleeps)


def rate_limited(code: int = 4, status: int = 400, headers: dict | None = None) -> tuple:
    return (status, {"error": {"message": "(#4) Application request limit reached", "code": code}}, 0, headers or {})


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


def test_passing_faults_are_retried_until_an_answer(graph):
    sleeps = Sleeps()
    graph.script = [(503, "<html>unavailable</html>", 0), rate_limited(613), rate_limited(80001)]
    assert retrying(graph, sleeps).post("me/messages", {"x": 1}) == {"recipient_id": "1", "message_id": "m_1"}
    assert len(graph.calls) == 4
    assert len(sleeps) == 3 and all(0 <= pause <= 8 for pause in sleeps)


@pytest.mark.parametrize("code", [100, 190, 10, 200, 299, 551])
def test_permanent_errors_are_never_retried(graph, code):
    sleeps = Sleeps()
    graph.script = [(400, {"error": {"message": "no", "code": code}}, 0)]
    with pytest.raises(GraphError):
        retrying(graph, sleeps).post("me/messages", {})
    assert len(graph.calls) == 1 and sleeps == []


def test_the_last_failure_is_raised_after_the_attempts_run_out(graph):
    sleeps = Sleeps()
    graph.answer = rate_limited(17)
    with pytest.raises(GraphError) as caught:
        retrying(graph, sleeps, attempts=3).post("me/messages", {})
    assert caught.value.code == 17
    assert len(graph.calls) == 3 and len(sleeps) == 2


def test_retry_after_is_honoured(graph):
    sleeps = Sleeps()
    graph.script = [rate_limited(4, 429, {"Retry-After": "7"})]
    retrying(graph, sleeps).post("me/messages", {})
    assert sleeps == [7.0]


def test_backoff_grows_exponentially_within_its_cap():
    policy = RetryPolicy(base_delay=0.5, max_delay=8)
    for retry, ceiling in [(1, 0.5), (2, 1), (3, 2), (4, 4), (5, 8), (9, 8)]:
        assert all(0 <= policy.delay(retry) <= ceiling for _ in range(50))


def test_time_outs_are_retried(graph):
    sleeps = Sleeps()
    graph.script = [(200, {"late": True}, 1.0)]
    answer = client(graph, timeout=0.3, retry=RetryPolicy(attempts=2), sleep=sleeps).post("me/messages", {})
    assert answer == {"recipient_id": "1", "message_id": "m_1"}
    assert len(graph.calls) == 2


def test_high_usage_slows_the_next_calls_down(graph):
    sleeps = Sleeps()
    graph.answer = (200, {"ok": True}, 0, {"X-App-Usage": '{"call_count": 95, "total_cputime": 20, "total_time": 30}'})
    api = client(graph, sleep=sleeps)
    api.get("me")
    assert sleeps == []
    api.get("me")
    assert api.governor.usage == 95 and sleeps and 3 < sleeps[0] <= 5


def test_business_use_case_usage_is_read_too(graph):
    sleeps = Sleeps()
    usage = '{"1234": [{"type": "messenger", "call_count": 50, "total_cputime": 88, "total_time": 10}]}'
    graph.answer = (200, {"ok": True}, 0, {"X-Business-Use-Case-Usage": usage})
    api = client(graph, sleep=sleeps)
    api.get("me")
    assert api.governor.usage == 88


def test_usage_under_80_percent_adds_no_pause(graph):
    sleeps = Sleeps()
    graph.answer = (200, {"ok": True}, 0, {"X-App-Usage": '{"call_count": 79}'})
    api = client(graph, sleep=sleeps)
    api.get("me")
    api.get("me")
    assert sleeps == []

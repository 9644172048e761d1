"""Deliveries answered in front of Flask (``bots.wsgi.Deliveries``): the same answers as through Flask, for less.

Each case is sent over real HTTP on loopback to two apps serving the same bot, one with the fast path (the
default) and one with ``fast_deliveries=False``; status, body and content type must match.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from flask import Flask

from bots import Bot
from bots.deliveries import Deliveries as Bodies
from bots.executor import InlineExecutor
from bots.flask import BotServer, make_app
from bots.signature import sign
from bots.testing import settings_for
from bots.wsgi import Deliveries, Headers

SECRET = "test-secret-demo"


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}


def message(mid: str = "m1", text: str = "hi") -> bytes:
    return json.dumps(Bodies().message(text, mid=mid)).encode()


def send(url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         chunks: list[bytes] | None = None) -> tuple[int, str, bytes]:
    """One request over a fresh connection: status, content type, body."""
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
    try:
        if chunks is not None:
            connection.putrequest(method, path)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            for chunk in chunks:
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.send(b"0\r\n\r\n")
        else:
            connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), answer.read()
    finally:
        connection.close()


@pytest.fixture
def served(bot: Bot, serve):
    """The bot served twice, with the fast path and without; ``served.handled`` lists the texts handled."""
    handled: list[str] = []

    @bot.on_message()
    def note(event, ctx):
        handled.append(event.text)
    env = {**settings_for(bot), "INBOX": "memory", "WEBHOOK_MAX_BYTES": "2048"}
    fast = make_app([bot], env, executor=InlineExecutor())
    slow = make_app([bot], env, executor=InlineExecutor(), fast_deliveries=False)
    hooks: list[str] = []
    for name, app in (("fast", fast), ("slow", slow)):
        app.before_request(lambda name=name: hooks.append(name))
    return SimpleNamespace(fast=serve(fast), slow=serve(slow), handled=handled, hooks=hooks)


CASES = {
    "a signed message": ("POST", "/webhooks/demo", message(), signed(message())),
    "on a topic URL": ("POST", "/webhooks/demo/page", message("m2"), signed(message("m2"))),
    "a wrong signature": ("POST", "/webhooks/demo", message("m3"), signed(message("m3"), "wrong")),
    "no signature": ("POST", "/webhooks/demo", message("m4"), {"Content-Type": "application/json"}),
    "an unknown bot": ("POST", "/webhooks/nobody", message("m5"), signed(message("m5"))),
    "an unknown topic": ("POST", "/webhooks/demo/nothing", message("m6"), signed(message("m6"))),
    "the wrong topic": ("POST", "/webhooks/demo/group", message("m7"), signed(message("m7"))),
    "not JSON": ("POST", "/webhooks/demo", b"{nope", signed(b"{nope")),
    "not an envelope": ("POST", "/webhooks/demo", b"[1, 2]", signed(b"[1, 2]")),
    "an empty body": ("POST", "/webhooks/demo", b"", signed(b"")),
    "over the size limit": ("POST", "/webhooks/demo", b"{" + b" " * 3000 + b"}", signed(b"{" + b" " * 3000 + b"}")),
    "a trailing slash": ("POST", "/webhooks/demo/", message("m8"), signed(message("m8"))),
    "too deep a path": ("POST", "/webhooks/demo/page/more", message("m9"), signed(message("m9"))),
    "a non-ASCII bot name": ("POST", "/webhooks/d%C3%A9mo", message("m10"), signed(message("m10"))),
    "the handshake": ("GET", "/webhooks/demo?hub.mode=subscribe&hub.verify_token=test-verify-demo&hub.challenge=7",
                      None, {}),
    "a PUT": ("PUT", "/webhooks/demo", message("m11"), signed(message("m11"))),
}


@pytest.mark.parametrize("case", CASES)
def test_every_answer_is_the_same_as_through_flask(served, case):
    method, path, body, headers = CASES[case]
    fast = send(served.fast, method, path, body, headers)
    slow = send(served.slow, method, path, body, headers)
    assert fast[0] == slow[0]
    assert fast[1].split(";")[0] == slow[1].split(";")[0]
    assert (json.loads(fast[2]) if fast[1].startswith("application/json") else fast[2]) == \
        (json.loads(slow[2]) if slow[1].startswith("application/json") else slow[2])


def test_an_ordinary_delivery_is_answered_without_flask(served):
    body = message("m20", "fast one")
    assert send(served.fast, "POST", "/webhooks/demo", body, signed(body))[0] == 200
    assert send(served.slow, "POST", "/webhooks/demo", body, signed(body))[0] == 200
    assert served.handled == ["fast one", "fast one"]  # each app dedupes on its own
    assert served.hooks == ["slow"]


def test_a_chunked_delivery_goes_through_flask_and_is_handled(served):
    body = message("m21", "in chunks")
    status, _, answer = send(served.fast, "POST", "/webhooks/demo", headers=signed(body),
                             chunks=[body[:40], body[40:]])
    assert (status, json.loads(answer)) == (200, {"received": 1})
    assert served.handled == ["in chunks"]
    assert served.hooks == ["fast"]


def test_a_body_shorter_than_its_length_is_the_same_400_as_through_flask(served):
    body = message("m22")
    answers = []
    for url in (served.fast, served.slow):
        with socket.create_connection(urlsplit(url).netloc.split(":"), timeout=10) as connection:
            connection.sendall(b"POST /webhooks/demo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                               b"X-Hub-Signature-256: %s\r\n\r\n%s" % (len(body), signed(body)["X-Hub-Signature-256"]
                                                                       .encode(), body[:30]))
            connection.shutdown(socket.SHUT_WR)
            answers.append(connection.makefile("rb").read())
    assert answers[0].startswith(b"HTTP/1.1 400")
    fast, slow = (json.loads(answer.split(b"\r\n\r\n", 1)[1]) for answer in answers)
    assert fast == slow
    assert b"ended before the length its headers promised" in answers[0]
    assert served.handled == []


def test_a_stream_that_fails_is_a_400_naming_the_server_error():
    class Broken:
        def read(self, size: int) -> bytes:
            raise ValueError("Invalid chunk size")

    def fallback(environ, start_response):
        raise AssertionError("an ordinary delivery must not reach the app")
    statuses: list[str] = []
    bot = Bot("demo")
    receiver = make_app([bot], {**settings_for(bot), "INBOX": "memory"}).extensions["bots"].receiver
    middleware = Deliveries(fallback, lambda: receiver)
    answer = middleware({"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/demo", "CONTENT_LENGTH": "10",
                         "wsgi.input": Broken()}, lambda status, headers: statuses.append(status))
    assert statuses == ["400 Bad Request"]
    assert json.loads(b"".join(answer)) == {
        "error": {"message": "the request body could not be read: ValueError: Invalid chunk size"}}


def test_the_extension_can_send_deliveries_through_the_apps_hooks(bot):
    app = Flask("host")
    seen: list[str] = []
    app.before_request(lambda: seen.append("hook"))
    BotServer(app, bots=[bot], env={**settings_for(bot), "INBOX": "memory"}, executor=InlineExecutor(),
              fast_deliveries=False)
    body = message("m23")
    assert app.test_client().post("/webhooks/demo", data=body, headers=signed(body)).status_code == 200
    assert seen == ["hook"]


def test_headers_are_read_from_the_environ_by_their_http_names():
    headers = Headers({"HTTP_X_HUB_SIGNATURE_256": "sha256=ab", "CONTENT_TYPE": "application/json"})
    assert headers.get("X-Hub-Signature-256") == "sha256=ab"
    assert headers.get("x-hub-signature") is None


def test_a_request_that_names_a_transfer_encoding_is_left_to_the_framework():
    reached: list[str] = []

    def fallback(environ, start_response):
        reached.append(environ["PATH_INFO"])
        start_response("204 No Content", [])
        return [b""]
    bot = Bot("demo")
    receiver = make_app([bot], {**settings_for(bot), "INBOX": "memory"}).extensions["bots"].receiver
    middleware = Deliveries(fallback, lambda: receiver)
    middleware({"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/demo", "CONTENT_LENGTH": "2",
                "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"{}")}, lambda *args: None)
    assert reached == ["/webhooks/demo"]


def test_an_apps_own_post_route_under_the_prefix_is_left_to_the_app(bot):
    app = Flask("host")
    app.post("/status/now")(lambda: {"own": True})
    BotServer(app, bots=[bot], url_prefix="", env={**settings_for(bot), "INBOX": "memory"}, executor=InlineExecutor())
    answer = app.test_client().post("/status/now", data=b"{}")
    assert (answer.status_code, answer.json) == (200, {"own": True})
    body = message("m24")
    assert app.test_client().post("/demo", data=body, headers=signed(body)).json == {"received": 1}

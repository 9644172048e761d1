"""Whatever anyone sends, the server answers 4xx or 200, never 5xx, and keeps handling valid messages.

The echo bot runs under gunicorn as the Procfile runs it (gthread, 2 workers, the SQLite inbox), with
the project's gunicorn.conf.py; requests are written as raw bytes on a socket, so nothing between the
test and the server tidies them up. Each property sends what an attacker or a broken client might:
any bytes, deep nesting, lone surrogates, chunked bodies good and bad, odd methods and paths, a
Content-Length that lies, repeated headers, over-long values. After each one a valid signed message
must still be answered and its reply must reach Graph. The counts by status are printed at the end.
"""

from __future__ import annotations

import json
import re
import socket
import string
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bots.deliveries import Deliveries
from bots.signature import sign
from tests.conftest import LoopbackServer
from tests.e2e.test_reliability import SECRET, EchoServer, GraphTestServer
from tests.support import wait_for

#: A failing example is reported as found: shrinking one against a live server can take minutes.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK)
STATUSES: Counter[str] = Counter()
PEOPLE = Deliveries(sender="100500")
LONE = ["\ud800", "\udbff", "\udc00", "\udfff"]


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphTestServer]:
    servers: list[LoopbackServer] = []

    def serve(app) -> str:
        servers.append(LoopbackServer(app))
        return servers[-1].url
    yield GraphTestServer(serve)
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def server(graph, tmp_path_factory) -> Iterator[EchoServer]:
    echo = EchoServer(graph.url, tmp_path_factory.mktemp("hostile"), LOG_LEVEL="WARNING")
    echo.start()
    yield echo
    echo.stop()
    print("\nhostile input, answers by status: " + ", ".join(f"{k} {v}" for k, v in sorted(STATUSES.items())))


@pytest.fixture(autouse=True)
def still_answers(server, graph) -> Iterator[None]:
    """After each property: a valid message is answered 200 and its reply reaches Graph."""
    yield
    text = f"still here {len(graph.received)}"
    assert status_of(exchange(server, signed(PEOPLE.message(text)))) == 200
    wait_for(lambda: f"re:{text}" in graph.received, timeout=10)


def exchange(server: EchoServer, raw: bytes, timeout: float = 2.0) -> bytes:
    """Write ``raw`` on a fresh connection, close our side, and read what comes back."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may refuse and close before all of it is written
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def status_of(answer: bytes) -> int | None:
    """The status of the first response in ``answer``; None when the server closed without answering."""
    if not answer:
        STATUSES["closed"] += 1
        return None
    status = int(answer.split(b" ", 2)[1])
    STATUSES[str(status)] += 1
    return status


def assert_no_5xx(answer: bytes, method: str = "POST") -> None:
    """No 5xx for the first response in ``answer``, and a refusal is JSON naming what was wrong (a HEAD
    answer has the headers only)."""
    status = status_of(answer)
    assert status is None or status < 500, answer[:300]
    if status is not None and status >= 400:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"application/json" in head.lower(), answer[:300]
        if method != "HEAD":
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            assert json.loads(body[:length])["error"]["message"], answer[:300]


def request(body: bytes, *, method: str = "POST", path: str = "/webhooks/echo", headers: list[str] | None = None,
            length: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(headers or [])]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def signed(document: dict | bytes, **options) -> bytes:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return request(body, headers=[f"X-Hub-Signature-256: {sign(body, SECRET)}", "Content-Type: application/json",
                                  *options.pop("headers", [])], **options)


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes_at_all(server, data):
    assert_no_5xx(exchange(server, data))


@FUZZ
@given(st.binary(max_size=3000))
def test_any_body_after_good_headers(server, body):
    assert_no_5xx(exchange(server, signed(body)))


@FUZZ
@given(st.integers(1, 5000), st.sampled_from([("[", "]"), ('{"a":', "}"), ('[{"a":', "}]")]))
def test_deep_nesting_is_a_400_naming_the_depth(server, depth, brackets):
    opening, closing = brackets
    body = ('{"object":"page","entry":' + opening * depth + "1" + closing * depth + "}").encode()
    answer = exchange(server, signed(body))
    assert_no_5xx(answer)
    if depth * opening.count("[") + depth * opening.count("{") > 64:
        assert status_of(answer) == 400 and b"nested deeper than 64" in answer


odd_text = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(LONE)), min_size=1, max_size=6).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK)
@given(odd_text, odd_text)
def test_lone_surrogates_are_kept_losslessly_from_delivery_to_reply(server, graph, text, mid):
    message = PEOPLE.message(text, mid=f"m_{mid}_{uuid.uuid4().hex}")
    as_json_reads_it = json.loads(json.dumps(text))  # "\\udbff\\udfff" in JSON is one character, U+10FFFF
    assert status_of(exchange(server, signed(message))) == 200
    wait_for(lambda: f"re:{as_json_reads_it}" in graph.received, timeout=10)


def chunked(body: bytes, cuts: list[int]) -> bytes:
    parts: list[bytes] = []
    start = 0
    for cut in [*sorted({min(cut, len(body)) for cut in cuts}), len(body)]:
        if cut > start:
            parts.append(b"%x\r\n%s\r\n" % (cut - start, body[start:cut]))
            start = cut
    return b"".join(parts) + b"0\r\n\r\n"


@FUZZ
@given(st.lists(st.integers(0, 400), max_size=8),
       st.sampled_from(["none", "bad size", "negative", "too long", "no terminator", "no crlf", "extension",
                        "trailer", "both lengths"]))
def test_chunked_bodies_good_and_bad(server, cuts, damage):
    body = json.dumps(PEOPLE.message("chunked")).encode()
    encoded = chunked(body, cuts)
    encoded = {
        "none": encoded, "bad size": b"zz\r\n" + encoded, "negative": b"-5\r\n" + encoded,
        "too long": b"ffff\r\n" + body, "no terminator": encoded[:-5], "no crlf": encoded.replace(b"\r\n", b"\n", 2),
        "extension": encoded.replace(b"\r\n", b";x=\x01\r\n", 1), "trailer": encoded[:-2] + b"X-Evil: 1\r\n\r\n",
        "both lengths": encoded,
    }[damage]
    headers = [f"X-Hub-Signature-256: {sign(body, SECRET)}", "Transfer-Encoding: chunked"]
    if damage == "both lengths":
        headers.append(f"Content-Length: {len(body)}")
    answer = exchange(server, request(encoded, headers=headers, length=False))
    assert_no_5xx(answer)
    if damage == "none":
        assert status_of(answer) == 200


methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT",
                                     "PROPFIND", "get", "P0ST"]),
                    st.text(string.ascii_uppercase, min_size=1, max_size=12))
paths = st.one_of(
    st.sampled_from(["/", "/webhooks", "/webhooks/", "/webhooks/echo/", "/webhooks/echo/page", "/webhooks/echo/x",
                     "/webhooks/%00", "/webhooks/x%0aforged", "/webhooks/..%2f..%2fetc", "/healthz?x=%ff",
                     "/admin/api/deadletters", "/metrics", "*", "//", "/webhooks/echo?hub.mode=subscribe"]),
    st.text(string.printable.strip() + "%", max_size=60).map(lambda s: "/" + s.replace(" ", "%20")))


@FUZZ
@given(methods, paths, st.binary(max_size=200))
def test_odd_methods_and_paths(server, method, path, body):
    assert_no_5xx(exchange(server, request(body, method=method, path=path)), method)


@FUZZ
@given(st.sampled_from(["short", "long", "negative", "text", "float", "spaces", "two", "huge"]), st.integers(1, 50))
def test_a_content_length_that_lies(server, lie, by):
    body = json.dumps(PEOPLE.message("lying")).encode()
    value = {"short": str(len(body) - by), "long": str(len(body) + by), "negative": f"-{by}", "text": "ten",
             "float": f"{len(body)}.0", "spaces": f" {len(body)} ", "two": f"{len(body)}, {len(body) + by}",
             "huge": "9" * (by + 10)}[lie]
    assert_no_5xx(exchange(server, signed(body, headers=[f"Content-Length: {value}"], length=False)))


@FUZZ
@given(st.permutations(["X-Hub-Signature-256: {good}", "X-Hub-Signature-256: sha256=00", "Content-Type: text/plain",
                        "Content-Type: application/json", "Host: evil.example", "Transfer-Encoding: identity",
                        "X-Hub-Signature: sha1=00"]), st.integers(2, 7))
def test_repeated_headers(server, headers, count):
    body = json.dumps(PEOPLE.message("repeated")).encode()
    chosen = [header.format(good=sign(body, SECRET)) for header in headers[:count]]
    assert_no_5xx(exchange(server, request(body, headers=chosen)))


@FUZZ
@given(st.sampled_from(["header value", "header name", "many headers", "url", "query", "signature", "body"]),
       st.integers(1, 40_000))
def test_over_long_values(server, what, size):
    body = json.dumps(PEOPLE.message("long")).encode()
    raw = {
        "header value": lambda: signed(body, headers=[f"X-Long: {'v' * size}"]),
        "header name": lambda: signed(body, headers=[f"X-{'n' * size}: 1"]),
        "many headers": lambda: signed(body, headers=[f"X-H{n}: {n}" for n in range(size // 200 + 1)]),
        "url": lambda: signed(body, path="/webhooks/" + "e" * size),
        "query": lambda: request(b"", method="GET", path="/webhooks/echo?hub.challenge=" + "c" * size),
        "signature": lambda: request(body, headers=[f"X-Hub-Signature-256: sha256={'a' * size}"]),
        "body": lambda: signed(b"{" + b" " * size * 30 + b"}"),
    }[what]()
    assert_no_5xx(exchange(server, raw))

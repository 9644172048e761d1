"""The guarded fetcher against real pages on loopback, which the policy allows explicitly."""

from __future__ import annotations

import gzip
import shutil
import socket
import subprocess
import threading
import time
from urllib.parse import urlsplit

import pytest
from flask import Flask, Response, redirect, request
from werkzeug.serving import make_server

from linkpreview.fetch import FetchFailed, Page, fetch
from linkpreview.guard import FetchPolicy, FetchRefused

PAGE = """<!doctype html><html><head><title>Q3 planning</title>
<meta property="og:description" content="Owner: Dana"></head><body>hello</body></html>"""


@pytest.fixture
def site(serve):
    """A small site on loopback; ``site.seen`` records each request's path, Host, headers and cookies."""
    app = Flask("pages")
    app.seen = []

    @app.before_request
    def record():
        app.seen.append({"path": request.path, "host": request.host, "headers": dict(request.headers),
                         "cookies": dict(request.cookies)})

    @app.get("/")
    def page():
        return PAGE

    @app.get("/hop/<int:left>")
    def hop(left):
        return redirect(f"/hop/{left - 1}" if left > 1 else "/")

    @app.get("/to")
    def to():
        return redirect(request.args["url"])

    @app.get("/relative")
    def relative():
        return Response(status=302, headers={"Location": "hop/1"})

    @app.get("/cookie")
    def cookie():
        response = redirect("/")
        response.set_cookie("session", "abc123")
        return response

    @app.get("/json")
    def json_page():
        return {"title": "not html"}

    @app.get("/missing")
    def missing():
        return PAGE, 404

    @app.get("/big")
    def big():
        return "<html>" + "x" * 5000

    @app.get("/big-stream")
    def big_stream():
        return Response((b"<p>" + b"x" * 997 for _ in range(10)), mimetype="text/html")

    @app.get("/bomb")
    def bomb():
        return Response(gzip.compress(b" " * 5_000_000), content_type="text/html",
                        headers={"Content-Encoding": "gzip"})

    @app.get("/drip")
    def drip():
        def body():
            for _ in range(50):
                yield b"x"
                time.sleep(0.2)
        return Response(body(), mimetype="text/html")

    @app.get("/latin1")
    def latin1():
        return Response("<title>Caf\u00e9</title>".encode("latin-1"), content_type="text/html; charset=ISO-8859-1")

    @app.get("/meta-charset")
    def meta_charset():
        return Response('<meta charset="windows-1252"><title>\u201cq\u201d</title>'.encode("cp1252"),
                        content_type="text/html")

    app.url = serve(app)
    app.port = urlsplit(app.url).port
    return app


@pytest.fixture
def policy() -> FetchPolicy:
    """Loopback allowed by address only: 127.0.0.1/32, nothing else internal."""
    return FetchPolicy(["127.0.0.1"])


def names(mapping: dict[str, str]):
    """A resolver for test names, and the record of every look-up it answered."""
    calls = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in mapping:
            raise OSError(f"{host} not found")
        return [mapping[host]]
    resolve.calls = calls
    return resolve


def test_a_page_on_an_allowed_address_is_fetched(site, policy):
    page = fetch(f"{site.url}/", policy)
    assert page == Page(f"{site.url}/", f"{site.url}/", 200, "text/html", PAGE)


def test_loopback_is_refused_unless_allowed(site):
    with pytest.raises(FetchRefused, match="loopback"):
        fetch(f"{site.url}/", FetchPolicy())
    assert site.seen == []


def test_three_redirects_are_followed(site, policy):
    page = fetch(f"{site.url}/hop/3", policy)
    assert page.final_url == f"{site.url}/"
    assert [seen["path"] for seen in site.seen] == ["/hop/3", "/hop/2", "/hop/1", "/"]


def test_a_fourth_redirect_is_refused(site, policy):
    with pytest.raises(FetchRefused, match="more than 3"):
        fetch(f"{site.url}/hop/4", policy)
    assert [seen["path"] for seen in site.seen] == ["/hop/4", "/hop/3", "/hop/2", "/hop/1"]


def test_a_relative_location_resolves_against_the_page(site, policy):
    assert fetch(f"{site.url}/relative", policy).final_url == f"{site.url}/"


@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://[::1]/",
    "http://127.0.0.2/",
    "http://2130706434/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:25/",
])
def test_a_redirect_out_of_the_allowed_space_is_refused(site, policy, location):
    with pytest.raises(FetchRefused, match="redirected to a refused URL"):
        fetch(f"{site.url}/to?url={location}", policy)
    assert [seen["path"] for seen in site.seen] == ["/to"]


def test_a_redirect_to_a_name_resolving_into_private_space_is_refused(site):
    policy = FetchPolicy(["127.0.0.1"], resolver=names({"evil.test": "10.0.0.1"}))
    with pytest.raises(FetchRefused, match=r"10\.0\.0\.1"):
        fetch(f"{site.url}/to?url=http://evil.test/", policy)


def test_non_html_is_refused(site, policy):
    with pytest.raises(FetchRefused, match="application/json"):
        fetch(f"{site.url}/json", policy)


def test_a_non_2xx_answer_fails(site, policy):
    with pytest.raises(FetchFailed, match="HTTP 404"):
        fetch(f"{site.url}/missing", policy)


def test_an_announced_oversized_body_is_refused(site, policy):
    with pytest.raises(FetchRefused, match="announced 5006 bytes"):
        fetch(f"{site.url}/big", policy, max_bytes=4096)


def test_an_oversized_body_without_a_length_is_refused(site, policy):
    with pytest.raises(FetchRefused, match="more than the 4096-byte cap"):
        fetch(f"{site.url}/big-stream", policy, max_bytes=4096)


def test_a_compressed_body_is_capped_by_its_decoded_size(site, policy):
    with pytest.raises(FetchRefused, match="more than the 1048576-byte cap"):
        fetch(f"{site.url}/bomb", policy)


def test_a_body_within_the_cap_is_read_whole(site, policy):
    assert len(fetch(f"{site.url}/big-stream", policy, max_bytes=10_000).text) == 10_000


def test_a_slow_drip_body_is_stopped_by_the_total_budget(site, policy):
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="1 s budget"):
        fetch(f"{site.url}/drip", policy, timeout=1.0)
    assert time.monotonic() - started < 1.8


def test_slow_headers_are_stopped_by_the_total_budget(policy):
    with socket.create_server(("127.0.0.1", 0)) as server:
        def drip_headers():
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Slow: " + b"y" * 40:
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        return
                    time.sleep(0.1)
        threading.Thread(target=drip_headers, daemon=True).start()
        started = time.monotonic()
        with pytest.raises(FetchFailed, match="budget"):
            fetch(f"http://127.0.0.1:{server.getsockname()[1]}/", policy, timeout=1.0)
        assert time.monotonic() - started < 1.8


def test_cookies_are_not_sent_back(site, policy):
    fetch(f"{site.url}/cookie", policy)
    assert [(seen["path"], seen["cookies"]) for seen in site.seen] == [("/cookie", {}), ("/", {})]


def test_the_service_headers_are_sent(site, policy):
    fetch(f"{site.url}/", policy, headers={"Authorization": "Bearer service-token", "X-Tenant": "acme"})
    headers = site.seen[0]["headers"]
    assert headers["Authorization"] == "Bearer service-token"
    assert headers["X-Tenant"] == "acme"
    assert "linkpreview" in headers["User-Agent"]


def test_the_service_headers_stay_on_their_host(site):
    resolver = names({"wiki.test": "127.0.0.1", "other.test": "127.0.0.1"})
    policy = FetchPolicy(["wiki.test", "other.test"], resolver=resolver)
    other = f"http://other.test:{site.port}/"
    fetch(f"http://wiki.test:{site.port}/to?url={other}", policy, headers={"Authorization": "Bearer service-token"})
    assert [(seen["host"], seen["headers"].get("Authorization")) for seen in site.seen] == [
        (f"wiki.test:{site.port}", "Bearer service-token"), (f"other.test:{site.port}", None)]


def test_the_connection_goes_to_the_checked_address(site):
    resolver = names({"wiki.test": "127.0.0.1"})
    page = fetch(f"http://wiki.test:{site.port}/hop/1", FetchPolicy(["wiki.test"], resolver=resolver))
    assert page.final_url == f"http://wiki.test:{site.port}/"
    assert [seen["host"] for seen in site.seen] == [f"wiki.test:{site.port}"] * 2
    assert resolver.calls == ["wiki.test", "wiki.test"]


def rebinding(*answers: str):
    """A resolver whose answer for any name changes on each look-up, as a DNS-rebinding attacker's does."""
    left = iter(answers)

    def resolve(host: str, port: int) -> list[str]:
        resolve.calls.append(host)
        return [next(left)]
    resolve.calls = []
    return resolve


def test_a_rebinding_name_is_looked_up_once_per_hop(site):
    resolver = rebinding("127.0.0.1", "10.0.0.1")
    assert fetch(f"http://rebind.test:{site.port}/", FetchPolicy(["127.0.0.1"], resolver=resolver)).text == PAGE
    assert resolver.calls == ["rebind.test"]


def test_a_redirect_to_a_rebound_name_is_checked_again(site):
    resolver = rebinding("127.0.0.1", "10.0.0.1")
    with pytest.raises(FetchRefused, match=r"redirected to a refused URL.*10\.0\.0\.1"):
        fetch(f"http://rebind.test:{site.port}/hop/1", FetchPolicy(["127.0.0.1"], resolver=resolver))
    assert [seen["path"] for seen in site.seen] == ["/hop/1"]


def test_the_charset_comes_from_the_header_or_the_page(site, policy):
    assert fetch(f"{site.url}/latin1", policy).text == "<title>Caf\u00e9</title>"
    assert "\u201cq\u201d" in fetch(f"{site.url}/meta-charset", policy).text


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for wiki.test, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=wiki.test", "-addext", "subjectAltName=DNS:wiki.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_site(certificate):
    """The one-page site over https, with the certificate for wiki.test; yields its port."""
    app = Flask("tls")
    app.add_url_rule("/", "page", lambda: PAGE)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=(str(certificate[0]), str(certificate[1])))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_https_verifies_the_certificate_against_the_host_name(tls_site, certificate, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    policy = FetchPolicy(["wiki.test", "other.test"], resolver=names({"wiki.test": "127.0.0.1",
                                                                        "other.test": "127.0.0.1"}))
    assert fetch(f"https://wiki.test:{tls_site}/", policy).text == PAGE
    with pytest.raises(FetchFailed, match="TLS"):
        fetch(f"https://other.test:{tls_site}/", policy)


def test_https_refuses_an_untrusted_certificate(tls_site, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    policy = FetchPolicy(["wiki.test"], resolver=names({"wiki.test": "127.0.0.1"}))
    with pytest.raises(FetchFailed, match="TLS"):
        fetch(f"https://wiki.test:{tls_site}/", policy)

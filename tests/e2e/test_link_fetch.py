"""``bot.link_preview(domain, fetch=True)`` end to end: a signed ``link``/``preview`` delivery over
real HTTP to the bot server, which fetches a real page over real HTTP through the SSRF guard.

Both servers are werkzeug on loopback, in threads. The operator allows ``127.0.0.1`` with
``LINKPREVIEW_ALLOW``; ``127.0.0.2`` (loopback too, but not allowed) serves a decoy page that a
redirect must never reach. Nothing is mocked.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask, Response, redirect, request
from werkzeug.serving import make_server

from bots import Bot
from bots.flask import make_app
from bots.signature import sign
from bots.testing import settings_for
from linkpreview import NO_PREVIEW

VIEWER, OTHER = "100071234567890", "100071234567899"
SLOW_SECONDS = 1.2
BUDGET_MS = 300
ARTICLE = """<!doctype html><html><head>
<title>Fallback title</title>
<meta property="og:title" content="Q3 planning">
<meta name="twitter:description" content="Owner: Dana, edited 2 days ago">
<meta property="og:image" content="/img/q3.png">
<meta property="og:type" content="article">
<link rel="canonical" href="/articles/q3">
</head><body>the plan</body></html>"""
TITLE_ONLY = "<html><head><title>  Just a   title </title></head><body>x</body></html>"


class Served:
    """A WSGI app on ``host``, on a free port, in a thread; ``url`` is its base URL."""

    def __init__(self, app, host: str = "127.0.0.1") -> None:
        self.server = make_server(host, 0, app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers() -> Iterator[list[Served]]:
    """Every server a test starts, shut down after it."""
    started: list[Served] = []
    yield started
    for server in started:
        server.close()


def pages(name: str) -> Flask:
    """A small site; ``app.seen`` records each path requested, in order."""
    app = Flask(name)
    app.seen = []

    @app.before_request
    def record():
        app.seen.append(request.path)

    @app.get("/articles/q3")
    def article():
        return ARTICLE

    @app.get("/plain")
    def plain():
        return TITLE_ONLY

    @app.get("/to")
    def to():
        return redirect(request.args["url"])

    @app.get("/data.json")
    def data():
        return {"title": "not a page"}

    @app.get("/slow")
    def slow():
        time.sleep(SLOW_SECONDS)
        return Response(ARTICLE, mimetype="text/html")

    return app


@pytest.fixture
def site(servers):
    """The pages on 127.0.0.1, the address the operator allows."""
    app = pages("site")
    servers.append(Served(app))
    app.url = servers[-1].url
    return app


@pytest.fixture
def decoy(servers):
    """The same pages on 127.0.0.2: loopback, not allowed; it must never be asked for anything."""
    app = pages("decoy")
    servers.append(Served(app, "127.0.0.2"))
    app.url = servers[-1].url
    return app


def bot_server(servers, tmp_path, **settings: str) -> str:
    """The bot server for a bot that previews 127.0.0.1 with the OpenGraph fetcher; its base URL."""
    bot = Bot("unfurl", description="previews pages by their own metadata")
    bot.link_preview("127.0.0.1", fetch=True)
    env = {**settings_for(bot), "DATA_DIR": str(tmp_path), "GRAPH_API_URL": "http://127.0.0.1:9", **settings}
    servers.append(Served(make_app([bot], env)))
    return servers[-1].url


def ask(url: str, link: str, viewer: str = VIEWER) -> requests.Response:
    """POST a signed ``link``/``preview`` delivery, as Workplace sends it, and return the answer."""
    body = {"object": "link", "entry": [{"time": 1700000007, "changes": [{"field": "preview", "value": {
        "community": {"id": "987654321012345"}, "user": {"id": viewer}, "link": link}}]}]}
    raw = json.dumps(body).encode()
    secret = settings_for(Bot("unfurl"))["UNFURL_APP_SECRET"]
    return requests.post(f"{url}/webhooks/unfurl", data=raw, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, secret)})


def test_a_page_is_previewed_by_its_own_metadata(site, servers, tmp_path):
    url = bot_server(servers, tmp_path, LINKPREVIEW_ALLOW="127.0.0.1")
    link = f"{site.url}/articles/q3"
    response = ask(url, link)
    assert response.status_code == 200
    assert response.json() == {"data": [{
        "link": link, "privacy": "organization", "title": "Q3 planning",
        "description": "Owner: Dana, edited 2 days ago", "type": "article",
        "icon": f"{site.url}/img/q3.png", "canonical_link": f"{site.url}/articles/q3"}], "linked_user": True}


def test_a_page_with_only_a_title_element_is_previewed_by_it(site, servers, tmp_path):
    url = bot_server(servers, tmp_path, LINKPREVIEW_ALLOW="127.0.0.1")
    link = f"{site.url}/plain"
    assert ask(url, link).json()["data"] == [{"link": link, "privacy": "organization", "title": "Just a title"}]


def test_an_organization_preview_is_fetched_once_for_every_viewer(site, servers, tmp_path):
    url = bot_server(servers, tmp_path, LINKPREVIEW_ALLOW="127.0.0.1")
    link = f"{site.url}/articles/q3"
    answers = [ask(url, link, viewer).json() for viewer in (VIEWER, OTHER, VIEWER)]
    assert answers[0] == answers[1] == answers[2] and answers[0]["data"][0]["title"] == "Q3 planning"
    assert site.seen == ["/articles/q3"]


def test_viewers_who_ask_while_a_page_is_fetched_share_that_one_fetch(site, servers, tmp_path):
    """A link posted to a busy group: everyone's preview request arrives before the page answers."""
    url = bot_server(servers, tmp_path, LINKPREVIEW_ALLOW="127.0.0.1", LINKPREVIEW_BUDGET_MS="3000")
    link = f"{site.url}/slow"
    answers: list[dict] = []
    askers = [threading.Thread(target=lambda viewer=viewer: answers.append(ask(url, link, viewer).json()))
              for viewer in (VIEWER, OTHER, "100071234567801", "100071234567802")]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()

    assert [answer["data"][0]["title"] for answer in answers] == ["Q3 planning"] * 4
    assert site.seen == ["/slow"]


def test_without_linkpreview_allow_the_guard_refuses_loopback(site, servers, tmp_path, caplog):
    url = bot_server(servers, tmp_path)
    response = ask(url, f"{site.url}/articles/q3")
    assert (response.status_code, response.json()) == (200, NO_PREVIEW)
    assert site.seen == []
    assert "127.0.0.1 is not public (loopback)" in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize("target", ["decoy", "http://[::1]/articles/q3", "http://2130706434/articles/q3"])
def test_a_redirect_into_a_disallowed_address_answers_no_preview(site, decoy, servers, tmp_path, target, caplog):
    url = bot_server(servers, tmp_path, LINKPREVIEW_ALLOW="127.0.0.1")
    location = f"{decoy.url}/articles/q3" if target == "decoy" else target
    response = ask(url, f"{site.url}/to?{urlencode({'url': location})}")
    assert (response.status_code, response.json()) == (200, NO_PREVIEW)
    assert site.seen == ["/to"] and decoy.seen == []
    assert "redirected to a refused URL" in caplog.text


def test_a_redirect_within_the_allowed_address_is_followed(site, servers, tmp_path):
    url = bot_server(servers, tmp_path, LINKPREVIEW_ALLOW="127.0.0.1")
    link = f"{site.url}/to?url=/articles/q3"
    assert ask(url, link).json()["data"][0]["title"] == "Q3 planning"
    assert site.seen == ["/to", "/articles/q3"]


def test_a_page_that_is_not_html_answers_no_preview(site, servers, tmp_path, caplog):
    url = bot_server(servers, tmp_path, LINKPREVIEW_ALLOW="127.0.0.1")
    response = ask(url, f"{site.url}/data.json")
    assert (response.status_code, response.json()) == (200, NO_PREVIEW)
    assert "answered application/json, not HTML" in caplog.text


def test_a_slow_page_answers_no_preview_in_budget_then_its_late_result_from_the_cache(site, servers, tmp_path):
    url = bot_server(servers, tmp_path, LINKPREVIEW_ALLOW="127.0.0.1", LINKPREVIEW_BUDGET_MS=str(BUDGET_MS))
    link = f"{site.url}/slow"
    started = time.monotonic()
    first = ask(url, link)
    assert (first.status_code, first.json()) == (200, NO_PREVIEW)
    assert time.monotonic() - started < BUDGET_MS / 1000 + 0.5  # well before the page answers
    time.sleep(SLOW_SECONDS + 0.8)  # the fetch goes on after the answer, and fills the cache
    started = time.monotonic()
    second = ask(url, link, OTHER)
    assert time.monotonic() - started < BUDGET_MS / 1000
    assert second.json()["data"][0]["title"] == "Q3 planning"
    assert site.seen == ["/slow"]

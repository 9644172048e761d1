"""Answering preview requests: every answer shape, per-viewer privacy, the cache, the time budget."""

from __future__ import annotations

import logging
import re
import threading
import time

import pytest

from bots import Bot, Preview
from bots.testing import BotTester
from linkpreview import NO_PREVIEW, ConflictError, PreviewService, Registration, Registry
from linkpreview.cache import MemoryPreviewCache

VIEWER, OTHER = "100071234567890", "100071234567899"


def link_request(link: str | None, viewer: str = VIEWER, field: str = "preview") -> dict:
    value = {"community": {"id": "987654321012345"}, "user": {"id": viewer}}
    if link is not None:
        value["link"] = link
    return {"object": "link", "entry": [{"time": 1700000007, "changes": [{"field": field, "value": value}]}]}


@pytest.fixture
def wiki() -> Bot:
    bot = Bot("wiki")
    calls = bot.calls = []

    @bot.link_preview("wiki.example.com", path=r"^/p/(?P<page>\w+)")
    def page(request):
        calls.append((request.viewer_id, request.match["page"]))
        if request.match["page"] == "secret" and request.viewer_id != VIEWER:
            return Preview.inaccessible(request.link)
        if request.match["page"] == "public":
            return Preview(title="Public page", privacy="organization")
        if request.match["page"] == "missing":
            return None
        return Preview(title=f"Page {request.match['page']}", description="A wiki page", type="doc",
                       icon="https://wiki.example.com/i.png", canonical_link="https://wiki.example.com/p/x",
                       additional_data=[("Owner", "Dana")])

    return bot


def test_a_preview_answer_has_the_documented_shape(wiki):
    tester = BotTester(wiki)
    response = tester.post(link_request("https://wiki.example.com/p/home"))
    assert response.status_code == 200
    assert response.json == {"data": [{
        "link": "https://wiki.example.com/p/home", "privacy": "accessible", "title": "Page home",
        "description": "A wiki page", "type": "doc", "icon": "https://wiki.example.com/i.png",
        "canonical_link": "https://wiki.example.com/p/x",
        "additional_data": [{"title": "Owner", "value": "Dana", "format": "text"}]}], "linked_user": True}


def test_inaccessible_shows_no_content_to_that_viewer(wiki):
    tester = BotTester(wiki)
    mine = tester.post(link_request("https://wiki.example.com/p/secret", VIEWER)).json["data"][0]
    theirs = tester.post(link_request("https://wiki.example.com/p/secret", OTHER)).json["data"][0]
    assert mine["privacy"] == "accessible" and mine["title"] == "Page secret"
    assert theirs == {"link": "https://wiki.example.com/p/secret", "privacy": "inaccessible"}


def test_no_preview_answers(wiki, caplog):
    tester = BotTester(wiki)
    assert tester.post(link_request("https://wiki.example.com/p/missing")).json == NO_PREVIEW
    assert tester.post(link_request("https://wiki.example.com/elsewhere")).json == NO_PREVIEW
    assert tester.post(link_request("https://intranet.example.org/x")).json == NO_PREVIEW
    assert "no link-preview registration covers intranet.example.org" in caplog.text


def test_subdomains_are_covered_and_the_most_specific_registration_wins():
    bot = Bot("layered")
    bot.link_preview("example.com")(lambda request: Preview(title="generic"))
    bot.link_preview("docs.example.com")(lambda request: Preview(title="docs"))
    bot.link_preview("docs.example.com", path=r"^/d/")(lambda request: Preview(title="docs document"))
    tester = BotTester(bot)
    titles = [tester.post(link_request(link)).json["data"][0]["title"] for link in (
        "https://www.example.com/", "https://eu.docs.example.com/home", "https://docs.example.com/d/1")]
    assert titles == ["generic", "docs", "docs document"]


def test_conflicting_registrations_stop_start_up_naming_both():
    first, second = Bot("first"), Bot("second")
    first.link_preview("docs.example.com", path=r"^/d/")(lambda request: None)
    second.link_preview("docs.example.com", path=r"^/d/")(lambda request: None)
    from bots.errors import ConfigError
    with pytest.raises(ConfigError, match=r"first: docs.example.com \^/d/ -> .* and second: docs.example.com"):
        BotTester(first, second)
    with pytest.raises(ConflictError):
        Registry([Registration("a", "x.example.com", None, print), Registration("b", "x.example.com", None, print)])


@pytest.mark.parametrize("domain", ["https://docs.example.com", "docs", "-bad-.example.com", "a..b", ""])
def test_registering_a_domain_that_is_not_a_host_name_fails(domain):
    with pytest.raises(ValueError):
        Bot("x").link_preview(domain)


def test_the_cache_answers_repeats_per_viewer_and_shares_only_organization_previews(wiki):
    tester = BotTester(wiki)
    for viewer in (VIEWER, VIEWER, OTHER):
        tester.post(link_request("https://wiki.example.com/p/home", viewer))
    for viewer in (VIEWER, OTHER, OTHER):
        tester.post(link_request("https://wiki.example.com/p/public", viewer))
    assert wiki.calls == [(VIEWER, "home"), (OTHER, "home"), (VIEWER, "public")]


def test_the_cache_normalises_links():
    calls = []
    resolver = Registration("b", "wiki.example.com", None, lambda request: calls.append(1) or Preview(title="t"))
    service = PreviewService(Registry([resolver]))
    for link in ("https://wiki.example.com/a", "HTTPS://WIKI.example.com:443/a#top", "https://wiki.example.com/a"):
        service.preview("b", link, VIEWER)
    assert calls == [1]


def test_two_bots_covering_one_link_each_answer_with_their_own_cached_preview():
    wide, narrow = Bot("wide"), Bot("narrow")
    wide.link_preview("example.com")(lambda request: Preview(title="from wide"))
    narrow.link_preview("docs.example.com")(lambda request: Preview(title="from narrow"))
    tester = BotTester(wide, narrow)

    titles = [tester.post(link_request("https://docs.example.com/a"), bot=name).json["data"][0]["title"]
              for name in ("wide", "narrow", "wide", "narrow")]

    assert titles == ["from wide", "from narrow", "from wide", "from narrow"]


def test_cached_previews_expire_after_their_ttl():
    clock = [0.0]
    cache = MemoryPreviewCache(clock=lambda: clock[0])
    cache.put("k", {"title": "t"}, ttl=300)
    clock[0] = 299
    assert cache.get("k") == {"title": "t"}
    clock[0] = 301
    assert cache.get("k") is None


def test_the_cache_is_bounded():
    cache = MemoryPreviewCache(max_items=2)
    for key in "abc":
        cache.put(key, {"k": key}, 60)
    assert cache.get("a") is None and len(cache) == 2


def test_a_slow_resolver_gives_no_preview_in_budget_and_its_late_result_fills_the_cache(caplog):
    release = threading.Event()
    bot = Bot("slow")

    @bot.link_preview("slow.example.com")
    def slow(request):
        release.wait(5)
        return Preview(title="late but fine")

    tester = BotTester(bot, settings={"LINKPREVIEW_BUDGET_MS": "200"})
    started = time.monotonic()
    assert tester.post(link_request("https://slow.example.com/x")).json == NO_PREVIEW
    assert time.monotonic() - started < 2
    assert "ran past the 0.2 s budget" in caplog.text
    release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        answer = tester.post(link_request("https://slow.example.com/x")).json
        if answer["data"]:
            break
        time.sleep(0.05)
    assert answer["data"][0]["title"] == "late but fine"


@pytest.mark.parametrize("result, logged", [
    ("a string", "returned str, expected a Preview"),
    (Preview(title=""), "invalid preview (title"),
    (Preview(title="x", privacy="secret"), "invalid preview (privacy"),
    (Preview(title="x", icon="javascript:alert(1)"), "invalid preview (icon"),
    (Preview(title="x" * 301), "invalid preview (title"),
    (Preview(privacy="accessible"), "needs a title"),
    (Preview(title="x", additional_data=[("k", "v")] * 11), "invalid preview (additional_data"),
])
def test_an_invalid_resolver_result_gives_no_preview_and_a_log_line(result, logged, caplog):
    bot = Bot("sloppy")
    bot.link_preview("sloppy.example.com")(lambda request: result)
    response = BotTester(bot).post(link_request("https://sloppy.example.com/x"))
    assert response.status_code == 200 and response.json == NO_PREVIEW
    assert logged in caplog.text


def test_a_resolver_that_raises_gives_no_preview_never_a_5xx(caplog):
    bot = Bot("broken")
    bot.link_preview("broken.example.com")(lambda request: 1 / 0)
    with caplog.at_level(logging.ERROR):
        response = BotTester(bot).post(link_request("https://broken.example.com/x"))
    assert response.status_code == 200 and response.json == NO_PREVIEW
    assert "raised on a preview request" in caplog.text


@pytest.mark.parametrize("body, field", [
    (link_request(None), "entry[0].changes[0].value.link"),
    ({"object": "link", "entry": [{"changes": [{"field": "preview", "value": {"link": "https://x.test/"}}]}]},
     "entry[0].changes[0].value.user"),
])
def test_malformed_preview_requests_get_400_naming_the_field(wiki, body, field):
    response = BotTester(wiki).post(body)
    assert response.status_code == 400 and response.json["error"]["field"] == field


def test_a_link_delivery_with_two_changes_is_refused(wiki):
    body = link_request("https://wiki.example.com/p/a")
    body["entry"][0]["changes"].append(body["entry"][0]["changes"][0])
    assert BotTester(wiki).post(body).status_code == 400


def test_preview_requests_need_a_valid_signature_too(wiki):
    tester = BotTester(wiki)
    assert tester.post(link_request("https://wiki.example.com/p/a"), secret="wrong").status_code == 403
    assert wiki.calls == []


def test_a_collection_answers_the_documents_to_offer():
    bot = Bot("shelf")

    @bot.link_collection
    def recent(request):
        return [Preview(title="One", link="https://docs.example.com/d/1"),
                Preview(title="Two", link="https://docs.example.com/d/2", privacy="organization")]

    answer = BotTester(bot).post(link_request(None, field="collection")).json
    assert [(item["title"], item["link"]) for item in answer["data"]] == [
        ("One", "https://docs.example.com/d/1"), ("Two", "https://docs.example.com/d/2")]


def test_a_bot_without_a_collection_handler_answers_an_empty_collection(wiki):
    assert BotTester(wiki).post(link_request(None, field="collection")).json == NO_PREVIEW


def test_match_and_regex_reach_the_resolver():
    seen = []
    bot = Bot("matcher")
    bot.link_preview("x.example.com", path=re.compile(r"^/(?P<kind>\w+)/(\d+)$"))(
        lambda request: seen.append((request.match, request.regex.group(2), request.host, request.path)))
    BotTester(bot).post(link_request("https://x.example.com/ticket/42"))
    assert seen == [({"kind": "ticket"}, "42", "x.example.com", "/ticket/42")]

"""The documents bot example: previews per viewer, the composer's collection, search in chat."""

from __future__ import annotations

import pytest

from bots.testing import BotTester
from handlers.docs import bot

DANA, SAM, PRIYA = "100071234567890", "100071234567899", "100071234567892"


def ask(tester: BotTester, link: str | None, viewer: str, field: str = "preview") -> dict:
    value = {"community": {"id": "987654321012345"}, "user": {"id": viewer}}
    if link:
        value["link"] = link
    body = {"object": "link", "entry": [{"time": 1700000007, "changes": [{"field": field, "value": value}]}]}
    return tester.post(body).json


@pytest.fixture
def docs() -> BotTester:
    return BotTester(bot)


def test_a_reader_sees_the_document_preview(docs):
    item = ask(docs, "https://docs.example.com/d/q3-plan", DANA)["data"][0]
    assert item["title"] == "Q3 planning" and item["privacy"] == "accessible"
    assert {"title": "Owner", "value": "Dana Whitfield", "format": "text"} in item["additional_data"]


def test_someone_else_gets_inaccessible(docs):
    assert ask(docs, "https://docs.example.com/d/q3-plan", SAM)["data"] == [
        {"link": "https://docs.example.com/d/q3-plan", "privacy": "inaccessible"}]


def test_a_document_everyone_may_read_is_an_organization_preview(docs):
    assert ask(docs, "https://docs.example.com/d/travel-policy", SAM)["data"][0]["privacy"] == "organization"


def test_an_unknown_document_has_no_preview(docs):
    assert ask(docs, "https://docs.example.com/d/nope", DANA)["data"] == []


def test_the_collection_offers_what_the_viewer_may_read_newest_first(docs):
    titles = [item["title"] for item in ask(docs, None, PRIYA, "collection")["data"]]
    assert titles == ["Salary bands 2027", "Travel policy", "Engineering onboarding"]


def test_find_in_chat_lists_readable_matches(docs):
    docs.message("find policy", sender=SAM)
    assert docs.replies[-1].text == "Travel policy: https://docs.example.com/d/travel-policy"
    docs.message("find salary", sender=SAM)
    assert docs.replies[-1].text == "No document you can read matches that."

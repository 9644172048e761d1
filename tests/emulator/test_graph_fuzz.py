"""Nothing a Graph client sends makes the local Workplace answer 5xx: every endpoint, any parameters of any JSON
shape, as a JSON body, a form or a query string, gets a Graph answer or a Graph error (4xx with its code)."""

from __future__ import annotations

import json
import re

import pytest
from emulator_helpers import DANA, IT_HELP, SECRET, SETTINGS, TOKEN
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bots.signature import timed_proof
from emulator import create_app
from emulator.graph import ROUTES

#: The names the endpoints read, so generated bodies reach past "missing parameter" into each handler.
NAMES = ["recipient", "message", "messaging_type", "sender_action", "fields", "ids", "text", "id", "thread_key",
         "to", "name", "participants", "persistent_menu", "greeting", "get_started", "whitelisted_domains",
         "object", "callback_url", "verify_token", "include_values", "formatting", "link", "notify", "attachment",
         "quick_replies", "payload", "tag", "metadata", "locale", "composer_input_disabled", "call_to_actions"]
KEYS = st.sampled_from(NAMES) | st.text(max_size=4)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=8)
BODIES = st.dictionaries(st.sampled_from(NAMES), JSON, max_size=4)
IDS = {"THREAD": ["t_1", "t_999999"], "ID": [DANA, IT_HELP, "nope", "me"]}


@pytest.fixture(scope="module")
def graph():
    app = create_app({**SETTINGS, "EMULATOR_BOT_URL": "http://127.0.0.1:9", "EMULATOR_RETRY_DELAYS": "0"})
    yield app.test_client()
    app.extensions["emulator"].close()


def paths() -> st.SearchStrategy[tuple[str, str]]:
    """Each route's method and a path it matches, its id groups filled with known and unknown ids."""
    choices = []
    for verb, pattern, _, _ in ROUTES:
        text = pattern.pattern.replace(r"([\w.-]+)", "{ID}").replace(r"(t_\d+)", "{THREAD}")
        for key in ("ID", "THREAD"):
            if "{" + key + "}" in text:
                choices += [(verb, text.replace("{" + key + "}", value)) for value in IDS[key]]
                break
        else:
            choices.append((verb, re.sub(r"\\(.)", r"\1", text)))
    return st.sampled_from(choices)


def _form(body: dict) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in body.items()}


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=paths(), body=BODIES, how=st.sampled_from(["json", "form", "query"]))
def test_no_parameters_make_any_endpoint_answer_5xx(graph, route, body, how):
    method, path = route
    auth = {"Authorization": f"Bearer {TOKEN}"}
    query = dict(timed_proof(TOKEN, SECRET))
    if path.startswith("app/"):
        auth, query = {}, {"access_token": "111111111111111|" + SECRET}
    sent = {"json": body} if how == "json" and method != "GET" else \
        {"data": _form(body)} if how == "form" and method != "GET" else {}
    if how == "query" or method == "GET":
        query |= _form(body)
    answer = graph.open(f"/v19.0/{path}", method=method, headers=auth, query_string=query, **sent)
    event(f"HTTP {answer.status_code}")
    assert answer.status_code < 500, (method, path, how, body, answer.get_data(as_text=True)[:300])
    assert answer.is_json and ("error" in answer.json) == (answer.status_code >= 400)


#: The people's side and the Admin Panel: every POST a page or a script can send.
FORM_NAMES = ["text", "message", "payload", "title", "status", "name", "members", "person_id", "next", "logo_url",
              "description", "callback_url", "verify_token", "fields", "permissions", "domains", "error_rate",
              "latency_ms", "ip_allowlist", "require_proof", "discoverable", "groups", "confirm"]
PAGES = ["/work/api/threads/{thread}/messages", "/work/api/threads/{thread}/read",
         f"/work/api/groups/{IT_HELP}/posts", "/work/api/items/nope/comments", "/work/api/status", "/work/chat",
         "/work/viewer", "/admin/integrations", "/admin/integrations/{bot}/webhooks/page",
         "/admin/integrations/{bot}/webhooks/page/delete"] + [
    f"/admin/integrations/{{bot}}/{name}" for name in
    ("details", "visibility", "permissions", "security", "domains", "faults", "groups")]
FIELDS = st.dictionaries(st.sampled_from(FORM_NAMES), st.text(max_size=12) | st.lists(st.text(max_size=6), max_size=3),
                         max_size=5)


@pytest.fixture(scope="module")
def pages():
    """The people's side and the Admin Panel, signed in as the Administrator, with a chat open with helpdesk."""
    app = create_app({**SETTINGS, "EMULATOR_BOT_URL": "http://127.0.0.1:9", "EMULATOR_RETRY_DELAYS": "0"})
    browser = app.test_client()
    browser.post("/work/viewer", data={"person_id": "100071234567894"})
    bot = app.extensions["emulator"].integrations.by_name("helpdesk")
    thread = re.search(r"/chat/(t_\d+)", browser.get(f"/work/bots/{bot.id}").location or "").group(1)
    yield browser, {"thread": thread, "bot": bot.id}
    app.extensions["emulator"].close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.sampled_from(PAGES), fields=FIELDS, as_json=st.booleans(), body=BODIES)
def test_no_form_or_page_api_body_makes_the_people_side_or_the_admin_panel_answer_5xx(pages, page, fields, as_json,
                                                                                     body):
    browser, ids = pages
    path = page.format(**ids)
    answer = browser.post(path, json=body) if as_json else browser.post(path, data=fields)
    event(f"HTTP {answer.status_code}")
    assert answer.status_code < 500, (path, fields if not as_json else body, answer.get_data(as_text=True)[:300])


DEEP = "[" * 100_000


@pytest.mark.parametrize("sent", [
    {"data": DEEP, "content_type": "application/json"},
    {"data": {"message" + "[a]" * 5000: "x"}},
    {"data": {"message": DEEP[:5000]}},
    {"query_string": {"recipient" + "[0]" * 100: "x"}},
], ids=["json body", "bracket key", "json-string value", "bracket query"])
def test_parameters_nested_past_the_limit_are_refused_naming_it(graph, sent):
    query = {**timed_proof(TOKEN, SECRET), **sent.pop("query_string", {})}
    answer = graph.post("/me/messages", headers={"Authorization": f"Bearer {TOKEN}"}, query_string=query, **sent)
    assert answer.status_code == 400 and "nested deeper than 64" in answer.json["error"]["message"]


def test_a_field_selection_nested_past_the_limit_is_refused_and_a_usual_one_is_read(graph):
    auth, proof = {"Authorization": f"Bearer {TOKEN}"}, timed_proof(TOKEN, SECRET)
    deep = graph.get(f"/{DANA}", headers=auth, query_string={**proof, "fields": "managers{" * 5000})
    assert deep.status_code == 400 and "deeper than 64" in deep.json["error"]["message"]
    usual = graph.get(f"/{DANA}", headers=auth, query_string={**proof, "fields": "name,managers{name}"})
    assert usual.status_code == 200 and usual.json["managers"]["data"][0]["name"]


def test_a_page_api_body_nested_past_the_limit_is_a_bad_request(pages):
    browser, _ = pages
    answer = browser.post("/work/api/status", data=DEEP, content_type="application/json")
    assert answer.status_code == 400 and answer.is_json

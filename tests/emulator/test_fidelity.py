"""The local Workplace answers as Workplace did (issue 15): requests sent exactly as Meta's sample
integrations send them (fbsamples/workplace-platform-samples: ExpenseBot, ThanksBot) get the answers
those clients expect. Sources of each behaviour: docs/workplace-fidelity.md."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from emulator_helpers import DANA, IT_HELP, PLANNING, SECRET, SETTINGS, TOKEN, VERIFY, person
from hypothesis import given
from hypothesis import strategies as st

from emulator import create_app, params
from emulator.store import SCHEMA_VERSION

SAM, PRIYA, MARIA = "100071234567891", "100071234567892", "100071234567895"


@pytest.fixture
def workplace(emulator):
    """The emulator with the helpdesk integration as a sample deploys it: no appsecret_proof required."""
    helpdesk = emulator.state.integrations.by_name("helpdesk")
    emulator.state.integrations.update(helpdesk.id, require_proof=0)
    emulator.helpdesk = helpdesk
    return emulator


def graph(emulator, method: str, path: str, token: str = TOKEN, **kwargs) -> requests.Response:
    """A Graph call as Node's ``request`` makes it with ``auth: {bearer}``: the token in the header."""
    return requests.request(method, f"{emulator.url}/{path}", headers={"Authorization": f"Bearer {token}"},
                            timeout=10, **kwargs)


def mentions(emulator, callback) -> list[dict]:
    """The mention changes delivered to the bot so far."""
    assert emulator.state.courier.wait_idle()
    return [change["value"] for delivery in callback.deliveries for entry in delivery["body"]["entry"]
            for change in entry.get("changes", []) if change["field"] == "mention"]


def group_changes(emulator, callback, field: str) -> list[dict]:
    """The group changes of ``field`` delivered to the bot so far."""
    assert emulator.state.courier.wait_idle()
    return [change["value"] for delivery in callback.deliveries if delivery["body"]["object"] == "group"
            for entry in delivery["body"]["entry"] for change in entry["changes"] if change["field"] == field]


# 1. mention tags carry the type of what they tag ------------------------------------------------
def test_a_person_typed_by_full_name_is_tagged_as_a_user_and_the_bot_as_a_page(workplace, callback):
    person(workplace).post(f"{workplace.url}/work/api/groups/{IT_HELP}/posts",
                           json={"message": "Thanks @Priya Raman for the fix @helpdesk"}).raise_for_status()
    [mention] = mentions(workplace, callback)
    tags = {tag["id"]: tag for tag in mention["message_tags"]}
    assert tags[PRIYA]["type"] == "user" and tags[workplace.helpdesk.page_id]["type"] == "page"
    assert [t["id"] for t in mention["message_tags"] if t["type"] == "user"] == [PRIYA]  # what ThanksBot keeps
    assert mention["message"] == "Thanks Priya Raman for the fix helpdesk"
    for tag in mention["message_tags"]:
        assert mention["message"][tag["offset"]:tag["offset"] + tag["length"]] == tag["name"]


def test_a_group_tagged_by_id_is_typed_group(workplace, callback):
    person(workplace).post(f"{workplace.url}/work/api/groups/{IT_HELP}/posts",
                           json={"message": f"@helpdesk see @[{PLANNING}]"}).raise_for_status()
    [mention] = mentions(workplace, callback)
    assert [(t["name"], t["type"]) for t in mention["message_tags"]] == [("helpdesk", "page"),
                                                                         ("Product Planning", "group")]


# 2. reads by ids at the root, and people's fields -----------------------------------------------
def test_the_managers_of_several_people_read_by_ids_at_the_root_are_keyed_by_id(workplace):
    answer = graph(workplace, "GET", "", params={"ids": f"{DANA},{SAM}", "fields": "managers"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {DANA: {"id": DANA, "managers": {"data": [{"id": MARIA, "name": "Maria Garcia"}]}},
                             SAM: {"id": SAM, "managers": {"data": [{"id": DANA, "name": "Dana Whitfield"}]}}}
    versioned = graph(workplace, "GET", "v2.9/", params={"ids": DANA, "fields": "name"})
    assert versioned.json() == {DANA: {"id": DANA, "name": "Dana Whitfield"}}


def test_an_ids_read_naming_an_unknown_id_is_refused_whole(workplace):
    answer = graph(workplace, "GET", "", params={"ids": f"{DANA},999999999", "fields": "managers"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 803 and "999999999" in answer.json()["error"]["message"]


def test_a_person_reads_with_nested_field_selection_as_expensebot_asks(workplace):
    answer = graph(workplace, "GET", SAM, params={"fields": "name,managers{name}"}).json()
    assert answer == {"id": SAM, "name": "Sam Okafor", "managers": {"data": [{"id": DANA, "name": "Dana Whitfield"}]}}
    profile = graph(workplace, "GET", DANA, params={"fields": "first_name,last_name,title,department,locale"})
    assert profile.json() == {"id": DANA, "first_name": "Dana", "last_name": "Whitfield", "title": "Product lead",
                              "department": "Product", "locale": "en_US"}
    assert graph(workplace, "GET", MARIA, params={"fields": "managers"}).json()["managers"] == {"data": []}
    titled = graph(workplace, "GET", SAM, params={"fields": "managers{title,managers{name}}"}).json()
    assert titled["managers"]["data"] == [{"id": DANA, "title": "Product lead", "managers": {"data": [
        {"id": MARIA, "name": "Maria Garcia"}]}}]


def test_a_member_is_read_by_the_address_they_sign_in_with_as_by_their_id(workplace):
    by_id = graph(workplace, "GET", SAM, params={"fields": "name,title"}).json()
    by_email = graph(workplace, "GET", "Sam@Example.com", params={"fields": "name,title"}).json()
    assert by_email == by_id == {"id": SAM, "name": "Sam Okafor", "title": "Engineer"}
    unknown = graph(workplace, "GET", "nobody@example.com", params={"fields": "name"})
    assert unknown.status_code == 400 and unknown.json()["error"]["error_subcode"] == 33


def test_a_database_from_before_profiles_gains_them_and_answers_managers(tmp_path, serve):
    path = tmp_path / "e.sqlite3"
    create_app(SETTINGS, db=path).extensions["emulator"].store.close()
    with sqlite3.connect(path) as db:  # what schema 2 wrote: no profiles
        db.execute("DROP TABLE profiles")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    app = create_app(SETTINGS, db=path)
    app.url = serve(app)
    helpdesk = app.extensions["emulator"].integrations.by_name("helpdesk")
    app.extensions["emulator"].integrations.update(helpdesk.id, require_proof=0)
    assert app.extensions["emulator"].store.meta("schema_version") == SCHEMA_VERSION
    assert graph(app, "GET", SAM, params={"fields": "managers"}).json()["managers"]["data"][0]["id"] == DANA


# 3. subscriptions take every field Workplace took --------------------------------------------
def test_expensebots_start_up_subscription_with_messaging_optins_is_accepted(workplace, callback):
    fields = "message_deliveries,messages,messaging_postbacks,messaging_optins"
    app_token = f"{workplace.helpdesk.id}|{SECRET}"
    answer = graph(workplace, "POST", "app/subscriptions", token=app_token,
                   params={"object": "page", "fields": fields, "verify_token": VERIFY,
                           "callback_url": f"{callback.url}/webhooks/expense"})
    assert answer.status_code == 200 and answer.json() == {"success": True}, answer.text
    listed = graph(workplace, "GET", "app/subscriptions", token=app_token).json()["data"]
    page = next(s for s in listed if s["object"] == "page")
    assert [f["name"] for f in page["fields"]] == fields.split(",")


def test_a_field_no_topic_has_is_still_refused(workplace, callback):
    answer = graph(workplace, "POST", "app/subscriptions", token=f"{workplace.helpdesk.id}|{SECRET}",
                   params={"object": "page", "fields": "messages,feed", "verify_token": VERIFY,
                           "callback_url": f"{callback.url}/webhooks/expense"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 100


# 4. nested parameters in bracket form ---------------------------------------------------------
MENU = {"persistent_menu": [{"locale": "default", "composer_input_disabled": "false", "call_to_actions": [
    {"title": "File a new claim", "type": "postback", "payload": "FILE_NEW_CLAIM"},
    {"title": "View open claims", "type": "postback", "payload": "VIEW_OPEN_CLAIMS"}]}]}
#: MENU as Node's ``qs`` writes ``qs: {persistent_menu: [...]}`` (ExpenseBot's setupPersistentMenu).
MENU_PAIRS = [
    ("persistent_menu[0][locale]", "default"), ("persistent_menu[0][composer_input_disabled]", "false"),
    ("persistent_menu[0][call_to_actions][0][title]", "File a new claim"),
    ("persistent_menu[0][call_to_actions][0][type]", "postback"),
    ("persistent_menu[0][call_to_actions][0][payload]", "FILE_NEW_CLAIM"),
    ("persistent_menu[0][call_to_actions][1][title]", "View open claims"),
    ("persistent_menu[0][call_to_actions][1][type]", "postback"),
    ("persistent_menu[0][call_to_actions][1][payload]", "VIEW_OPEN_CLAIMS")]


@pytest.mark.parametrize("where", ["params", "data"])
def test_a_persistent_menu_in_bracket_form_sets_the_same_menu_as_json(workplace, where):
    answer = graph(workplace, "POST", "me/messenger_profile", **{where: MENU_PAIRS})
    assert answer.status_code == 200 and answer.json() == {"result": "success"}, answer.text
    read = graph(workplace, "GET", "me/messenger_profile", params={"fields": "persistent_menu"}).json()
    assert read == {"data": [MENU]}


def test_a_greeting_in_bracket_form_and_one_as_a_json_string_are_the_same(workplace):
    greeting = [{"locale": "default", "text": "Hello! I'm Expense Bot."}, {"locale": "en_US", "text": "Howdy!"}]
    pairs = [("greeting[0][locale]", "default"), ("greeting[0][text]", "Hello! I'm Expense Bot."),
             ("greeting[1][locale]", "en_US"), ("greeting[1][text]", "Howdy!")]
    graph(workplace, "POST", "me/messenger_profile", params=pairs).raise_for_status()
    first = graph(workplace, "GET", "me/messenger_profile", params={"fields": "greeting"}).json()
    graph(workplace, "POST", "me/messenger_profile", data={"greeting": json.dumps(greeting)}).raise_for_status()
    second = graph(workplace, "GET", "me/messenger_profile", params={"fields": "greeting"}).json()
    assert first == second == {"data": [{"greeting": greeting}]}


def test_a_message_sent_as_a_bracket_form_reaches_the_person(workplace):
    answer = graph(workplace, "POST", "me/messages", data=[("recipient[id]", DANA), ("message[text]", "Hi Dana"),
                                                           ("message[quick_replies][0][content_type]", "text"),
                                                           ("message[quick_replies][0][title]", "New Claim"),
                                                           ("message[quick_replies][0][payload]", "FILE_NEW_CLAIM")])
    assert answer.status_code == 200 and answer.json()["recipient_id"] == DANA, answer.text
    thread, _ = workplace.state.community.direct_thread(DANA, workplace.helpdesk.page_id)
    [message] = workplace.state.community.messages(thread["id"])
    assert message["body"] == {"text": "Hi Dana", "quick_replies": [
        {"content_type": "text", "title": "New Claim", "payload": "FILE_NEW_CLAIM"}]}


@pytest.mark.parametrize("body", [{"json": {"message": {"text": "from both"}}},
                                  {"data": [("message[text]", "from both")]}])
def test_a_query_string_and_a_body_are_read_together(workplace, body):
    answer = graph(workplace, "POST", "me/messages", params=[("recipient[id]", DANA)], **body)
    assert answer.status_code == 200 and answer.json()["recipient_id"] == DANA, answer.text


def test_a_comment_whose_message_is_in_the_query_string_is_posted_as_thanksbot_replies(workplace):
    post = workplace.state.activity.post(IT_HELP, DANA, "Thanks @Priya Raman")
    answer = graph(workplace, "POST", f"{post['id']}/comments", params={"message": f"@[{PRIYA}] got 1 thanks"})
    assert answer.status_code == 200, answer.text
    comment = workplace.state.community.item(answer.json()["id"])
    assert comment["message"] == f"@[{PRIYA}] got 1 thanks" and comment["post_id"] == post["id"]


@pytest.mark.parametrize("pairs", [[("recipient", DANA), ("recipient[id]", DANA)],
                                   [("recipient[id]", DANA), ("recipient", DANA)]])
def test_a_name_given_both_as_a_value_and_as_an_object_is_refused(workplace, pairs):
    answer = graph(workplace, "POST", "me/messages", data=[*pairs, ("message[text]", "x")])
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 100


KEYS = st.text(st.characters(blacklist_characters="[]", blacklist_categories=("Cs",)), min_size=1, max_size=6)
LEAVES = (st.text(max_size=8).filter(lambda text: text[:1] not in "[{") | st.integers() | st.booleans()
          | st.none())
OBJECTS = st.recursive(LEAVES, lambda inner: st.lists(inner, min_size=1, max_size=4)
                       | st.dictionaries(KEYS.filter(lambda key: not key.isascii() or not key.isdigit()), inner,
                                         min_size=1, max_size=4), max_leaves=12)
TOP = st.dictionaries(KEYS, OBJECTS, min_size=1, max_size=4)


def as_form(value):
    """``value`` with every leaf as a form carries it (text)."""
    if isinstance(value, dict):
        return {key: as_form(child) for key, child in value.items()}
    if isinstance(value, list):
        return [as_form(child) for child in value]
    return params.as_text(value)


@given(TOP)
def test_any_nested_object_bracket_encoded_on_the_wire_parses_back_to_itself(value):
    wire = urlencode(params.encode(value))
    assert params.parse(parse_qsl(wire, keep_blank_values=True)) == as_form(value)


@given(TOP)
def test_any_nested_object_as_json_strings_parses_back_to_itself(value):
    containers = {key: child for key, child in value.items() if isinstance(child, (dict, list))}
    assert params.parse((key, json.dumps(child)) for key, child in containers.items()) == containers


# 5. permalinks point at the local Workplace's own pages ---------------------------------------
def test_permalinks_are_pages_of_the_address_the_local_workplace_serves_on(workplace, callback):
    hooks = workplace.state.integrations.subscriptions(workplace.helpdesk.id)
    hooks["group"].fields = ["posts", "comments"]
    workplace.state.integrations.subscribe(workplace.helpdesk.id, hooks["group"])
    dana = person(workplace)
    dana.post(f"{workplace.url}/work/api/groups/{IT_HELP}/posts", json={"message": "@helpdesk printer"})
    [mention] = mentions(workplace, callback)
    [post] = group_changes(workplace, callback, "posts")
    expected = f"{workplace.url}/work/groups/{IT_HELP}?post={post['post_id']}"
    assert mention["permalink_url"] == post["permalink_url"] == expected
    page = dana.get(mention["permalink_url"])
    assert page.status_code == 200 and urlsplit(page.url).path == f"/work/groups/{IT_HELP}"
    comment = dana.post(f"{workplace.url}/work/api/items/{post['post_id']}/comments", json={"message": "+1"}).json()
    [commented] = group_changes(workplace, callback, "comments")
    assert commented["permalink_url"] == f"{expected}&comment={comment['id']}"


# 6. deprecated endpoints answer as Graph did --------------------------------------------------
def test_thread_settings_answers_graphs_deprecation_error_naming_the_messenger_profile(workplace):
    answer = graph(workplace, "POST", "me/thread_settings", params=[
        ("setting_type", "call_to_actions"), ("thread_state", "new_thread"),
        ("call_to_actions[0][payload]", "GET_STARTED_PAYLOAD")])
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["code"] == 12 and error["type"] == "OAuthException"
    assert "messenger_profile" in error["message"] and "Unsupported" not in error["message"]

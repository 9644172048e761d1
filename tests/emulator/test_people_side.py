"""The people's side over HTTP: who you are, Work Chat and the groups, and what reaches the bots."""

from __future__ import annotations

import re

import requests
from emulator_helpers import ALEX, DANA, IT_HELP, person


def open_helpdesk(emulator, session: requests.Session) -> str:
    bot = emulator.state.integrations.by_name("helpdesk")
    page = session.get(f"{emulator.url}/work/bots/{bot.id}")
    return re.search(r"/chat/(t_\d+)", page.url).group(1)


def items(emulator, callback) -> list[dict]:
    assert emulator.state.courier.wait_idle()
    return [item for d in callback.deliveries for entry in d["body"]["entry"] for item in entry.get("messaging", [])]


def test_pages_and_the_api_need_a_person(emulator):
    anonymous = requests.Session()
    assert anonymous.get(f"{emulator.url}/work/chat").url.endswith("/")
    assert anonymous.get(f"{emulator.url}/work/api/chats").status_code == 401
    assert "Dana Whitfield" in anonymous.get(f"{emulator.url}/").text


def test_the_directory_lists_the_discoverable_bots(emulator):
    page = person(emulator).get(f"{emulator.url}/work/chat").text
    assert 'data-bot="helpdesk"' in page and 'data-bot="docs"' in page


def test_opening_a_bot_sends_get_started_once(emulator, callback):
    session = person(emulator)
    thread = open_helpdesk(emulator, session)
    assert open_helpdesk(emulator, session) == thread
    postbacks = [i["postback"] for i in items(emulator, callback) if "postback" in i]
    assert postbacks == [{"title": "Get Started", "payload": "GET_STARTED"}]


def test_messages_quick_replies_and_buttons_reach_the_bot(emulator, callback):
    session = person(emulator)
    thread = open_helpdesk(emulator, session)
    url = f"{emulator.url}/work/api/threads/{thread}/messages"
    assert session.post(url, json={"text": "help"}).ok
    assert session.post(url, json={"quick_reply": {"title": "Printer", "payload": "PRINTER"}}).ok
    assert session.post(url, json={"postback": {"title": "Help menu", "payload": "MENU"}}).ok
    assert session.post(url, json={"text": ""}).status_code == 400
    got = items(emulator, callback)[1:]
    assert got[0]["message"]["text"] == "help"
    assert got[1]["message"]["quick_reply"] == {"payload": "PRINTER"}
    assert got[2]["postback"] == {"title": "Help menu", "payload": "MENU"}
    shown = session.get(f"{emulator.url}/work/api/threads/{thread}").json()
    assert [m["body"]["text"] for m in shown["messages"]] == ["Get Started", "help", "Printer", "Help menu"]
    assert [item["title"] for item in shown["thread"]["menu"]] == ["Help menu", "Talk to a human", "IT status page"]


def test_someone_elses_thread_is_not_yours(emulator):
    thread = open_helpdesk(emulator, person(emulator, DANA))
    alex = person(emulator, ALEX)
    assert alex.get(f"{emulator.url}/work/api/threads/{thread}").status_code == 404
    assert alex.post(f"{emulator.url}/work/api/threads/{thread}/messages", json={"text": "hi"}).status_code == 404


def test_a_group_chat_with_a_bot_carries_the_thread(emulator, callback):
    bot = emulator.state.integrations.by_name("helpdesk")
    session = person(emulator)
    page = session.post(f"{emulator.url}/work/chat", data={"name": "Printer squad", "members": [ALEX, bot.page_id]})
    thread = re.search(r"/chat/(t_\d+)", page.url).group(1)
    session.post(f"{emulator.url}/work/api/threads/{thread}/messages", json={"text": "help"})
    assert items(emulator, callback)[0]["thread"] == {"id": thread}
    chats = person(emulator, ALEX).get(f"{emulator.url}/work/api/chats").json()["chats"]
    assert chats[0]["name"] == "Printer squad" and chats[0]["last"] == "help"


def test_posts_and_comments_appear_in_the_feed(emulator):
    session = person(emulator)
    post = session.post(f"{emulator.url}/work/api/groups/{IT_HELP}/posts", json={"message": "@helpdesk hello"}).json()
    session.post(f"{emulator.url}/work/api/items/{post['id']}/comments", json={"message": "anyone?"})
    feed = session.get(f"{emulator.url}/work/api/groups/{IT_HELP}/feed").json()
    newest = feed["posts"][0]
    assert newest["message"].startswith("@[") and [c["message"] for c in newest["comments"]] == ["anyone?"]
    assert session.post(f"{emulator.url}/work/api/items/nope/comments", json={"message": "x"}).status_code == 404


def test_a_link_nobody_registered_has_no_preview(emulator):
    answer = person(emulator).get(f"{emulator.url}/work/api/preview", params={"link": "https://example.org/x"})
    assert answer.json() == {"preview": None}

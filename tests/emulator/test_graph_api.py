"""The emulator's Graph API: every endpoint the framework calls, and every refusal, over real HTTP."""

from __future__ import annotations

import pytest
import requests
from emulator_helpers import ALEX, DANA, IT_HELP, SECRET, TOKEN, VERIFY

from bots.errors import GraphError
from bots.graph import GraphClient, RetryPolicy
from bots.signature import timed_proof


def client(emulator, token: str = TOKEN, secret: str = SECRET, proof: str = "timed") -> GraphClient:
    return GraphClient(emulator.url, token, secret, proof=proof, retry=RetryPolicy(attempts=1))


def refused(call) -> GraphError:
    with pytest.raises(GraphError) as caught:
        call()
    return caught.value


def helpdesk(emulator):
    return emulator.state.integrations.by_name("helpdesk")


def text_of(emulator, thread_id: str) -> list[str]:
    return [m["body"].get("text") for m in emulator.state.community.messages(thread_id)]


def test_a_message_to_one_person_lands_in_their_chat_with_the_bot(emulator):
    answer = client(emulator).post("me/messages", {"recipient": {"id": DANA}, "message": {"text": "hi"}})
    assert answer["recipient_id"] == DANA and answer["message_id"].startswith("m_emu_")
    thread, _ = emulator.state.community.direct_thread(DANA, helpdesk(emulator).page_id)
    assert text_of(emulator, thread["id"]) == ["hi"]
    assert requests.get(f"{emulator.url}/_emulator/calls").json()["calls"][-1]["path"] == "me/messages"


def test_a_call_repeated_with_its_idempotency_key_gets_the_first_answer_and_sends_once(emulator):
    send = {"recipient": {"id": DANA}, "message": {"text": "only once"}}
    first = client(emulator).request("POST", "me/messages", json=send, idempotency_key="helpdesk:7:0:abc")
    again = client(emulator).request("POST", "me/messages", json=send, idempotency_key="helpdesk:7:0:abc")
    other = client(emulator).request("POST", "me/messages", json=send, idempotency_key="helpdesk:8:0:def")
    assert again == first and other["message_id"] != first["message_id"]
    thread, _ = emulator.state.community.direct_thread(DANA, helpdesk(emulator).page_id)
    assert text_of(emulator, thread["id"]).count("only once") == 2
    assert emulator.state.answers.repeats == 1


def test_a_send_to_several_people_opens_a_group_chat_that_can_be_used_and_managed(emulator):
    graph = client(emulator)
    opened = graph.post("v18.0/me/messages", {"recipient": {"ids": [DANA, ALEX]}, "message": {"text": "room"}})
    key = opened["thread_key"]
    graph.post("me/messages", {"recipient": {"thread_key": key}, "message": {"text": "again"}})
    graph.post(f"{key}/threadname", {"name": "Incident 42"})
    graph.post(f"{key}/participants", {"to": ["100071234567891"]})
    graph.delete(f"{key}/participants", {"to": [ALEX]})
    thread = emulator.state.community.thread(key)
    assert thread["name"] == "Incident 42" and text_of(emulator, key) == ["room", "again"]
    assert set(thread["participants"]) == {helpdesk(emulator).page_id, DANA, "100071234567891"}
    assert {p["id"] for p in graph.get(f"{key}/participants")["data"]} == set(thread["participants"])
    assert graph.get(key, fields=["name"])["name"] == "Incident 42"


def test_sender_actions_show_typing_and_seen(emulator):
    graph = client(emulator)
    graph.post("me/messages", {"recipient": {"id": DANA}, "sender_action": "typing_on"})
    thread, _ = emulator.state.community.direct_thread(DANA, helpdesk(emulator).page_id)
    assert emulator.state.community.thread(thread["id"])["typing_until"] > 0
    graph.post("me/messages", {"recipient": {"id": DANA}, "sender_action": "typing_off"})
    graph.post("me/messages", {"recipient": {"id": DANA}, "sender_action": "mark_seen"})
    after = emulator.state.community.thread(thread["id"])
    assert after["typing_until"] == 0 and after["seen_until"] > 0


@pytest.mark.parametrize("body, words", [
    ({"message": {"text": "x"}}, "recipient"),
    ({"recipient": {"id": DANA, "thread_key": "t_1"}, "message": {"text": "x"}}, "recipient"),
    ({"recipient": {"id": DANA}}, "either message or sender_action"),
    ({"recipient": {"id": DANA}, "sender_action": "dance"}, "sender_action"),
    ({"recipient": {"id": DANA}, "message": {"text": "x" * 2001}}, "2000"),
    ({"recipient": {"id": "not-a-person"}, "message": {"text": "x"}}, "No matching user"),
    ({"recipient": {"thread_key": "t_404"}, "message": {"text": "x"}}, "No thread"),
])
def test_a_bad_send_is_refused_with_code_100(emulator, body, words):
    error = refused(lambda: client(emulator).post("me/messages", body))
    assert error.code == 100 and words in error.message


def test_a_person_who_left_is_unavailable(emulator):
    emulator.state.community.add_person("100071234567899", "Former Colleague", "gone@example.com", active=False)
    error = refused(lambda: client(emulator).post("me/messages", {"recipient": {"id": "100071234567899"},
                                                                  "message": {"text": "x"}}))
    assert error.code == 551


def test_the_messenger_profile_is_set_read_and_deleted(emulator):
    graph = client(emulator)
    assert graph.post("me/messenger_profile", {"get_started": {"payload": "GO"}}) == {"result": "success"}
    assert graph.get("me/messenger_profile", fields="get_started")["data"][0] == {"get_started": {"payload": "GO"}}
    graph.delete("me/messenger_profile", {"fields": ["get_started"]})
    assert "get_started" not in helpdesk(emulator).profile
    assert refused(lambda: graph.post("me/messenger_profile", {"colour": "red"})).code == 100


def test_comments_posts_and_likes_reach_the_group(emulator):
    graph = client(emulator)
    post_id = graph.post(f"{IT_HELP}/feed", {"message": "Maintenance tonight", "formatting": "MARKDOWN"})["id"]
    comment_id = graph.post(f"{post_id}/comments", {"message": "Done"})["id"]
    reply_id = graph.post(f"{comment_id}/comments", {"message": "Really done"})["id"]
    assert graph.post(f"{post_id}/likes", {}) == {"success": True}
    post = next(p for p in emulator.state.community.feed(IT_HELP) if p["id"] == post_id)
    assert [c["id"] for c in post["comments"]] == [comment_id, reply_id]
    assert post["likes"] == [helpdesk(emulator).page_id]
    assert [c["message"] for c in graph.get(f"{post_id}/comments")["data"]] == ["Done", "Really done"]
    assert graph.get(f"{IT_HELP}/feed")["data"][0]["message"] == "Maintenance tonight"
    assert graph.get(post_id, fields="message,from")["from"]["name"] == "helpdesk"
    assert refused(lambda: graph.post("123_456/comments", {"message": "x"})).subcode == 33


def test_nodes_are_read_with_the_fields_asked_for(emulator):
    graph = client(emulator)
    assert graph.get(DANA, fields=["name", "first_name"]) == {"id": DANA, "name": "Dana Whitfield",
                                                               "first_name": "Dana"}
    assert graph.get("me")["id"] == helpdesk(emulator).page_id
    assert graph.get(IT_HELP, fields="name")["name"] == "IT Help"
    assert refused(lambda: graph.get(DANA, fields="shoe_size")).code == 100
    assert refused(lambda: graph.get("999")).subcode == 33


def test_reading_an_email_needs_the_permission(emulator):
    error = refused(lambda: client(emulator).get(DANA, fields="email"))
    assert (error.code, error.status) == (200, 403)
    emulator.state.integrations.update(helpdesk(emulator).id, permissions=[*helpdesk(emulator).permissions,
                                                                            "Read user email"])
    assert client(emulator).get(DANA, fields="email")["email"] == "dana@example.com"


def test_app_subscriptions_run_the_handshake_and_are_listed_and_removed(emulator, callback):
    bot = helpdesk(emulator)
    graph, app_token = client(emulator), f"{bot.id}|{SECRET}"
    body = {"object": "group", "fields": "posts,comments", "callback_url": f"{callback.url}/webhooks/helpdesk",
            "verify_token": VERIFY}
    assert graph.request("POST", "app/subscriptions", json=body, token=app_token) == {"success": True}
    listed = graph.request("GET", "app/subscriptions", token=app_token)["data"]
    assert {"object": "group", "callback_url": body["callback_url"], "active": True,
            "fields": [{"name": "posts", "version": "v18.0"}, {"name": "comments", "version": "v18.0"}]} in listed
    graph.request("DELETE", "app/subscriptions", params={"object": "group"}, token=app_token)
    assert "group" not in emulator.state.integrations.subscriptions(bot.id)
    page_fields = graph.get("me/subscribed_apps")["data"][0]["subscribed_fields"]
    assert set(page_fields) == {"mention", "messages", "messaging_postbacks"}


def test_a_subscription_whose_handshake_fails_is_refused(emulator, callback):
    bot = helpdesk(emulator)
    body = {"object": "page", "fields": "messages", "callback_url": f"{callback.url}/webhooks/helpdesk",
            "verify_token": "not-the-token"}
    error = refused(lambda: client(emulator).request("POST", "app/subscriptions", json=body,
                                                     token=f"{bot.id}|{SECRET}"))
    assert error.code == 2200 and "403" in error.message
    bad_app = refused(lambda: client(emulator).request("POST", "app/subscriptions", json=body,
                                                       token=f"{bot.id}|wrong-secret"))
    assert bad_app.code == 190


def test_subscribing_a_field_needs_its_permission(emulator, callback):
    bot = helpdesk(emulator)
    body = {"object": "link", "fields": "preview", "callback_url": f"{callback.url}/webhooks/helpdesk",
            "verify_token": VERIFY}
    error = refused(lambda: client(emulator).request("POST", "app/subscriptions", json=body,
                                                     token=f"{bot.id}|{SECRET}"))
    assert error.code == 200 and "Link previews" in error.message


# refusals ---------------------------------------------------------------------------------------
def send(emulator, **kwargs) -> dict:
    return client(emulator, **kwargs).post("me/messages", {"recipient": {"id": DANA}, "message": {"text": "x"}})


def test_a_bad_or_missing_token_is_refused(emulator):
    assert refused(lambda: send(emulator, token="wrong-token")).code == 190
    response = requests.post(f"{emulator.url}/me/messages", json={})
    assert response.status_code == 400 and response.json()["error"]["code"] == 104


@pytest.mark.parametrize("secret, proof, words", [
    ("not-the-secret!!", "timed", "does not match"),
    ("not-the-secret!!", "classic", "does not match"),
    (SECRET, "off", "required"),
])
def test_a_bad_or_missing_proof_is_refused(emulator, secret, proof, words):
    error = refused(lambda: send(emulator, secret=secret, proof=proof))
    assert error.code == 100 and words in error.message


def test_a_stale_proof_time_is_refused(emulator):
    params = {**timed_proof(TOKEN, SECRET), "appsecret_time": "1000"}
    response = requests.post(f"{emulator.url}/me/messages", params=params, headers={"Authorization": f"Bearer {TOKEN}"},
                             json={"recipient": {"id": DANA}, "message": {"text": "x"}})
    assert response.json()["error"]["code"] == 100 and "5 minutes" in response.json()["error"]["message"]


def test_proof_is_optional_when_not_required(emulator):
    emulator.state.integrations.update(helpdesk(emulator).id, require_proof=0)
    assert send(emulator, proof="off")["recipient_id"] == DANA
    assert send(emulator, proof="classic")["recipient_id"] == DANA


def test_a_missing_permission_is_refused(emulator):
    emulator.state.integrations.update(helpdesk(emulator).id, permissions=["Mention bot"])
    error = refused(lambda: send(emulator))
    assert (error.code, error.status) == (200, 403) and "Message any member" in error.message


def test_a_disabled_integration_is_refused(emulator):
    emulator.state.integrations.update(helpdesk(emulator).id, enabled=0)
    error = refused(lambda: send(emulator))
    assert (error.code, error.status) == (10, 403) and "disabled" in error.message


def test_an_address_outside_the_allow_list_is_refused(emulator):
    bot = helpdesk(emulator)
    emulator.state.integrations.update(bot.id, ip_allow="10.0.0.0/8")
    error = refused(lambda: send(emulator))
    assert (error.code, error.status) == (5, 403) and "127.0.0.1" in error.message
    emulator.state.integrations.update(bot.id, ip_allow="10.0.0.0/8\n127.0.0.1")
    assert send(emulator)["recipient_id"] == DANA


def test_injected_faults_fail_calls_and_add_latency(emulator):
    bot = helpdesk(emulator)
    emulator.state.integrations.update(bot.id, error_rate=1.0)
    error = refused(lambda: send(emulator))
    assert (error.code, error.status, error.retryable) == (2, 503, True)
    emulator.state.integrations.update(bot.id, error_rate=0.0, latency_ms=300)
    answer = requests.get(f"{emulator.url}/me", headers={"Authorization": f"Bearer {TOKEN}"},
                          params=timed_proof(TOKEN, SECRET))
    assert answer.ok and answer.elapsed.total_seconds() >= 0.3


def test_calls_carry_usage_headers_and_are_counted_for_last_api_request(emulator):
    send(emulator)
    refused(lambda: send(emulator, proof="off"))
    response = requests.get(f"{emulator.url}/me", headers={"Authorization": f"Bearer {TOKEN}"},
                            params=timed_proof(TOKEN, SECRET))
    assert "call_count" in response.headers["X-App-Usage"]
    assert helpdesk(emulator).page_id in response.headers["X-Business-Use-Case-Usage"]
    usage = emulator.state.integrations.last_request(helpdesk(emulator).id)
    assert usage["days"][-1]["calls"] == 3 and usage["last_day"] == usage["days"][-1]["day"]
    assert len(usage["days"]) == 7


def test_unknown_paths_and_large_bodies_get_graph_errors(emulator):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.post(f"{emulator.url}/me/dance", headers=headers).json()["error"]["code"] == 100
    big = requests.post(f"{emulator.url}/me/messages", headers=headers, data=b"x" * (2 * 1024 * 1024))
    assert big.status_code == 413 and big.json()["error"]["code"] == 100


def test_a_reset_token_stops_working_at_once_and_its_calls_are_counted(emulator):
    bot = helpdesk(emulator)
    new = emulator.state.integrations.reset_token(bot.id)
    error = refused(lambda: send(emulator))
    assert (error.code, error.subcode) == (190, 460) and "reset" in error.message
    assert client(emulator, token=new).post("me/messages", {"recipient": {"id": DANA},
                                                            "message": {"text": "x"}})["recipient_id"] == DANA
    assert [c["code"] for c in emulator.state.integrations.recent_calls(bot.id)] == [None, 190]

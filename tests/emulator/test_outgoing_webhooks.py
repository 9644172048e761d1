"""Webhooks the emulator sends: signed with both headers, batched, retried with backoff, logged."""

from __future__ import annotations

import requests
from emulator_helpers import ALEX, DANA, IT_HELP, SECRET, VERIFY, person

from bots.envelope import load_event, parse
from bots.events import SecurityEvent, UserChange
from bots.signature import SHA1_HEADER, SHA256_HEADER, verify
from emulator.integrations import Subscription
from emulator.seed import ADMINISTRATOR
from emulator.webhooks import DeliverySettings, handshake


def chat_with_helpdesk(emulator) -> str:
    bot = emulator.state.integrations.by_name("helpdesk")
    thread, _ = emulator.state.community.direct_thread(DANA, bot.page_id)
    return thread["id"]


def entries(callback) -> list[dict]:
    return [entry for delivery in callback.deliveries for entry in delivery["body"]["entry"]]


def test_a_message_is_delivered_signed_with_both_headers(emulator, callback):
    emulator.state.activity.say(chat_with_helpdesk(emulator), DANA, "help")
    assert emulator.state.courier.wait_idle()
    delivery = callback.deliveries[0]
    assert verify(delivery["raw"], {SHA256_HEADER: delivery["headers"][SHA256_HEADER]}, [SECRET]) == "sha256"
    assert verify(delivery["raw"], {SHA1_HEADER: delivery["headers"][SHA1_HEADER]}, [SECRET]) == "sha1"
    item = delivery["body"]["entry"][0]["messaging"][0]
    assert delivery["body"]["object"] == "page"
    assert item["sender"]["id"] == DANA and item["message"]["text"] == "help" and item["message"]["mid"]


def test_messages_written_quickly_are_batched_in_order(emulator, callback):
    thread = chat_with_helpdesk(emulator)
    for n in range(6):
        emulator.state.activity.say(thread, DANA, f"message {n}")
    assert emulator.state.courier.wait_idle()
    texts = [entry["messaging"][0]["message"]["text"] for entry in entries(callback)]
    assert texts == [f"message {n}" for n in range(6)]
    assert len(callback.deliveries) < 6


def test_a_failing_callback_is_retried_until_it_answers_200(emulator, callback):
    callback.status = [500, 503, 200]
    emulator.state.activity.say(chat_with_helpdesk(emulator), DANA, "help")
    assert emulator.state.courier.wait_idle()
    assert len(callback.deliveries) == 3
    log = emulator.state.integrations.deliveries(emulator.state.integrations.by_name("helpdesk").id)[0]
    assert (log["status"], log["attempts"], log["detail"], log["topic"]) == ("delivered", 3, "HTTP 200", "page")
    assert log["latency_ms"] is not None


def test_a_callback_that_keeps_failing_or_times_out_is_given_up(emulator, callback):
    emulator.state.courier.settings = DeliverySettings(timeout=0.2, retry_delays=(0.05,))
    callback.delay = 0.5
    emulator.state.activity.say(chat_with_helpdesk(emulator), DANA, "help")
    assert emulator.state.courier.wait_idle()
    log = emulator.state.integrations.deliveries(emulator.state.integrations.by_name("helpdesk").id)[0]
    assert (log["status"], log["attempts"], log["detail"]) == ("gave up", 2, "time-out")


def test_a_disabled_integration_receives_nothing(emulator, callback):
    bot = emulator.state.integrations.by_name("helpdesk")
    emulator.state.integrations.update(bot.id, enabled=0)
    emulator.state.activity.say(chat_with_helpdesk(emulator), DANA, "help")
    assert emulator.state.courier.wait_idle()
    assert callback.deliveries == []


def test_only_subscribed_fields_are_delivered(emulator, callback):
    emulator.state.activity.read(chat_with_helpdesk(emulator), DANA)
    assert emulator.state.courier.wait_idle()
    assert callback.deliveries == []


def test_a_mention_in_a_post_sends_the_mention_and_the_group_webhooks(emulator, callback):
    post = emulator.state.activity.post(IT_HELP, DANA, "@helpdesk the printer is on fire")
    assert emulator.state.courier.wait_idle()
    bot = emulator.state.integrations.by_name("helpdesk")
    assert post["message"] == f"@[{bot.page_id}] the printer is on fire"
    mention = next(e for e in entries(callback) if e.get("changes", [{}])[0].get("field") == "mention")
    value = mention["changes"][0]["value"]
    assert mention["id"] == bot.page_id
    assert (value["item"], value["post_id"], value["from"]["id"]) == ("post", post["id"], DANA)
    assert value["message_tags"] == [{"id": bot.page_id, "name": "helpdesk", "type": "page", "offset": 0,
                                      "length": 8}]


def test_a_comment_reaches_the_bots_subscribed_to_group_comments(emulator, callback):
    post = emulator.state.activity.post(IT_HELP, DANA, "Laptop broken")
    emulator.state.activity.comment(post["id"], ALEX, "#it mine too")
    assert emulator.state.courier.wait_idle()
    changes = [e["changes"][0] for e in entries(callback) if "changes" in e]
    assert [(c["field"], c["value"]["message"]) for c in changes] == [("comments", "#it mine too")]
    assert changes[0]["value"]["post_id"] == post["id"]


def test_a_preview_is_asked_per_viewer_and_inaccessible_shows_none(emulator, callback):
    docs = emulator.state.integrations.by_name("docs")
    emulator.state.integrations.subscribe(docs.id, Subscription("link", f"{callback.url}/webhooks/docs", VERIFY,
                                                                ["preview"]))
    link = "https://docs.example.com/d/q3-plan"
    callback.answer = {"data": [{"link": link, "title": "Q3 planning", "privacy": "accessible"}]}
    assert emulator.state.previews.for_viewer(link, DANA)["title"] == "Q3 planning"
    callback.answer = {"data": [{"link": link, "privacy": "inaccessible"}]}
    assert emulator.state.previews.for_viewer(link, ALEX) is None
    assert emulator.state.previews.for_viewer(link, DANA)["title"] == "Q3 planning"
    viewers = [d["body"]["entry"][0]["changes"][0]["value"]["user"]["id"] for d in callback.deliveries]
    assert viewers == [DANA, ALEX]
    assert callback.deliveries[0]["headers"][SHA256_HEADER]


def test_the_handshake_says_why_it_failed(callback):
    assert handshake(f"{callback.url}/webhooks/x", VERIFY) is None
    assert "403" in handshake(f"{callback.url}/webhooks/x", "wrong")
    assert "could not reach" in handshake("http://127.0.0.1:9/webhooks/x", VERIFY, timeout=1)
    assert "http://" in handshake("ftp://example.com/x", VERIFY)


def test_picking_who_you_are_is_a_session_event_for_security_subscribers(emulator, callback):
    bot = emulator.state.integrations.by_name("helpdesk")
    emulator.state.integrations.update(bot.id, permissions=[*bot.permissions, "Read security logs"])
    emulator.state.integrations.subscribe(bot.id, Subscription("workplace_security", f"{callback.url}/webhooks/h",
                                                               VERIFY, ["sessions"]))
    person(emulator, ALEX)
    assert emulator.state.courier.wait_idle()
    change = callback.deliveries[0]["body"]["entry"][0]["changes"][0]
    assert callback.deliveries[0]["body"]["object"] == "workplace_security"
    assert change == {"field": "sessions", "value": {**change["value"], "event": "LOG_IN", "target_id": ALEX}}


def test_a_bot_joining_a_group_is_a_membership_change_for_the_groups_bots(emulator, callback):
    helpdesk = emulator.state.integrations.by_name("helpdesk")
    subscription = emulator.state.integrations.subscriptions(helpdesk.id)["group"]
    emulator.state.integrations.subscribe(helpdesk.id, Subscription("group", subscription.callback_url, VERIFY,
                                                                    ["membership"]))
    newcomer = emulator.state.integrations.create("standup", permissions=["Read group content"])
    emulator.state.activity.membership(IT_HELP, newcomer.page_id, True)
    emulator.state.activity.membership(IT_HELP, newcomer.page_id, True)
    emulator.state.activity.membership(IT_HELP, newcomer.page_id, False)
    assert emulator.state.courier.wait_idle()
    values = [e["changes"][0]["value"] for e in entries(callback)]
    assert [(v["verb"], v["member"]["id"]) for v in values] == [("add", newcomer.page_id),
                                                                ("remove", newcomer.page_id)]


def watch_user_status(emulator, callback, permitted: bool = True):
    bot = emulator.state.integrations.by_name("helpdesk")
    if permitted:
        emulator.state.integrations.update(bot.id, permissions=[*bot.permissions, "Read user status"])
    emulator.state.integrations.subscribe(bot.id, Subscription("user", f"{callback.url}/webhooks/h", VERIFY,
                                                               ["status"]))
    return bot


def test_setting_a_status_is_a_signed_user_status_webhook(emulator, callback):
    watch_user_status(emulator, callback)
    answer = person(emulator, DANA).post(f"{emulator.url}/work/api/status", json={"status": "  On holiday  "})
    assert answer.status_code == 200 and answer.json()["status"] == {"text": "On holiday"}
    assert emulator.state.courier.wait_idle()
    user = [d for d in callback.deliveries if d["body"]["object"] == "user"]
    assert len(user) == 1
    assert verify(user[0]["raw"], {SHA256_HEADER: user[0]["headers"][SHA256_HEADER]}, [SECRET]) == "sha256"
    entry = user[0]["body"]["entry"][0]
    assert entry["id"] == DANA
    assert entry["changes"][0]["field"] == "status"
    assert entry["changes"][0]["value"]["status"] == {"text": "On holiday"}


def test_a_status_reaches_no_one_without_the_permission_or_the_subscription(emulator, callback):
    watch_user_status(emulator, callback, permitted=False)
    person(emulator, DANA).post(f"{emulator.url}/work/api/status", json={"status": "Busy"})
    assert emulator.state.courier.wait_idle()
    assert [d for d in callback.deliveries if d["body"]["object"] == "user"] == []


def test_a_status_nobody_subscribed_to_is_not_sent(emulator, callback):
    person(emulator, DANA).post(f"{emulator.url}/work/api/status", json={"status": "Busy"})
    assert emulator.state.courier.wait_idle()
    assert [d for d in callback.deliveries if d["body"]["object"] == "user"] == []


def test_bad_status_input_is_a_4xx_naming_the_problem(emulator, callback):
    watch_user_status(emulator, callback)
    session = person(emulator, DANA)
    for body in [{}, {"status": "   "}, {"status": 5}, {"status": "x" * 141}]:
        answer = session.post(f"{emulator.url}/work/api/status", json=body)
        assert answer.status_code == 400 and "status" in answer.json()["error"]["message"]
    nobody = requests.post(f"{emulator.url}/work/api/status", json={"status": "hi"})
    assert nobody.status_code == 401 and "Pick who you are" in nobody.json()["error"]["message"]
    assert emulator.state.courier.wait_idle()
    assert [d for d in callback.deliveries if d["body"]["object"] == "user"] == []


def watch_security(emulator, callback, fields: list[str], permitted: bool = True):
    bot = emulator.state.integrations.by_name("helpdesk")
    if permitted:
        emulator.state.integrations.update(bot.id, permissions=[*bot.permissions, "Read security logs"])
    emulator.state.integrations.subscribe(bot.id, Subscription("workplace_security", f"{callback.url}/webhooks/h",
                                                               VERIFY, fields))
    return bot


def security_changes(callback) -> list[dict]:
    return [entry["changes"][0] for d in callback.deliveries if d["body"]["object"] == "workplace_security"
            for entry in d["body"]["entry"]]


def test_an_admin_resetting_a_token_is_admin_activity_for_security_subscribers(emulator, callback):
    watch_security(emulator, callback, ["admin_activity"])
    docs = emulator.state.integrations.by_name("docs")
    admin = person(emulator, ADMINISTRATOR)
    assert admin.post(f"{emulator.url}/admin/integrations/{docs.id}/token").status_code == 200
    assert emulator.state.courier.wait_idle()
    changes = security_changes(callback)
    assert [c["field"] for c in changes] == ["admin_activity"]
    value = changes[0]["value"]
    assert (value["event"], value["actor_id"], value["target_id"]) == ("ADMIN_RESET_ACCESS_TOKEN", ADMINISTRATOR,
                                                                       docs.id)
    assert isinstance(value["timestamp"], int)


def test_deleting_an_integration_is_admin_activity(emulator, callback):
    watch_security(emulator, callback, ["admin_activity"])
    docs = emulator.state.integrations.by_name("docs")
    person(emulator, ADMINISTRATOR).post(f"{emulator.url}/admin/integrations/{docs.id}/delete",
                                         data={"confirm": docs.name})
    assert emulator.state.courier.wait_idle()
    assert [c["value"]["event"] for c in security_changes(callback)] == ["ADMIN_DELETE_INTEGRATION"]


def test_security_events_need_the_permission_and_the_field(emulator, callback):
    watch_security(emulator, callback, ["admin_activity", "sessions"], permitted=False)
    docs = emulator.state.integrations.by_name("docs")
    admin = person(emulator, ADMINISTRATOR)
    assert admin.post(f"{emulator.url}/admin/integrations/{docs.id}/token").ok
    assert emulator.state.courier.wait_idle()
    assert security_changes(callback) == []
    watch_security(emulator, callback, ["sessions"])
    assert admin.post(f"{emulator.url}/admin/integrations/{docs.id}/token").ok
    assert emulator.state.courier.wait_idle()
    assert security_changes(callback) == []


def test_a_refused_delete_sends_no_admin_activity(emulator, callback):
    watch_security(emulator, callback, ["admin_activity"])
    docs = emulator.state.integrations.by_name("docs")
    refused = person(emulator, ADMINISTRATOR).post(f"{emulator.url}/admin/integrations/{docs.id}/delete",
                                                   data={"confirm": "wrong"})
    assert refused.status_code == 400
    assert emulator.state.courier.wait_idle()
    assert security_changes(callback) == []


def test_the_framework_reads_the_status_and_admin_webhooks_as_its_events(emulator, callback):
    watch_user_status(emulator, callback)
    watch_security(emulator, callback, ["admin_activity"])
    docs = emulator.state.integrations.by_name("docs")
    session = person(emulator, DANA)
    session.post(f"{emulator.url}/work/api/status", json={"status": "Busy"})
    person(emulator, ADMINISTRATOR).post(f"{emulator.url}/admin/integrations/{docs.id}/secret")
    assert emulator.state.courier.wait_idle()
    events = [load_event(item) for d in callback.deliveries for item in parse(d["raw"])[1]]
    status = next(e for e in events if isinstance(e, UserChange))
    assert (status.field, status.sender_id) == ("status", DANA)
    security = next(e for e in events if isinstance(e, SecurityEvent))
    assert (security.event_name, security.actor_id, security.target_id) == ("ADMIN_RESET_APP_SECRET", ADMINISTRATOR,
                                                                                         docs.id)

"""The Admin Panel over HTTP: every setting is saved, and every bad value comes back as a message."""

from __future__ import annotations

import re

import pytest
import requests
from emulator_helpers import DANA, VERIFY, person

from bots.errors import GraphError
from bots.graph import GraphClient, RetryPolicy
from bots.signature import SHA256_HEADER, verify
from emulator.seed import ADMINISTRATOR


@pytest.fixture
def admin(emulator) -> requests.Session:
    """A browser signed in as the seeded Administrator (only an Administrator opens the Admin Panel)."""
    return person(emulator, ADMINISTRATOR)


def create(emulator, admin, name: str = "Standup bot") -> str:
    page = admin.post(f"{emulator.url}/admin/integrations", data={"name": name, "description": "daily updates"})
    assert page.ok and "Created." in page.text
    return re.search(r"/admin/integrations/(\d+)", page.url).group(1)


def save(emulator, admin, integration_id: str, section: str, data, status: int = 200) -> str:
    """Post one section's form; a refused value answers 400 with the page again (``status=400``)."""
    page = admin.post(f"{emulator.url}/admin/integrations/{integration_id}/{section}", data=data)
    assert page.status_code == status
    return page.text


def refuse(emulator, admin, integration_id: str, section: str, data) -> str:
    return save(emulator, admin, integration_id, section, data, status=400)


def test_the_list_shows_the_seeded_integrations(emulator, admin):
    page = admin.get(f"{emulator.url}/admin/").text
    assert "helpdesk" in page and "docs" in page and "Create custom integration" in page


def test_creating_an_integration_shows_its_credentials(emulator, admin):
    integration_id = create(emulator, admin)
    integration = emulator.state.integrations.get(integration_id)
    page = admin.get(f"{emulator.url}/admin/integrations/{integration_id}").text
    assert integration.app_secret in page and integration.access_token in page and integration_id in page
    for section in ("Permissions", "Webhooks", "Delivery log", "Security", "Link preview", "Last API request",
                    "Fault injection", "Visibility", "Delete"):
        assert f"<h2>{section}</h2>" in page


@pytest.mark.parametrize("data, words", [({"name": ""}, "name of 1 to 80"), ({"name": "helpdesk"}, "exists already")])
def test_a_bad_new_integration_is_refused_with_a_message(emulator, admin, data, words):
    page = admin.post(f"{emulator.url}/admin/integrations", data=data)
    assert words in page.text and len(emulator.state.integrations.all()) == 2


def test_details_are_saved_and_checked(emulator, admin):
    integration_id = create(emulator, admin)
    assert "Saved." in save(emulator, admin, integration_id, "details", {
        "name": "Standup", "description": "new words", "logo_url": "https://example.com/logo.png"})
    saved = emulator.state.integrations.get(integration_id)
    assert (saved.name, saved.description, saved.logo_url) == ("Standup", "new words", "https://example.com/logo.png")
    assert "http:// or https://" in refuse(emulator, admin, integration_id, "details",
                                           {"name": "Standup", "logo_url": "javascript:alert(1)"})


@pytest.mark.parametrize("section, data, field, kept", [
    ("details", {"name": "Standup", "description": "kept words", "logo_url": "ftp://x"}, "logo_url", "kept words"),
    ("security", {"ip_allow": "10.0.0.0/8\nnot-an-ip", "require_proof": "on"}, "ip_allow", "10.0.0.0/8\nnot-an-ip"),
    ("faults", {"error_rate": "25", "latency_ms": "99999"}, "latency_ms", 'value="25"'),
    ("webhooks/group", {"callback_url": "http://127.0.0.1:1/x", "verify_token": "typed-token"}, "fields",
     'value="typed-token"'),
])
def test_a_refused_form_keeps_what_was_typed_and_marks_the_field(emulator, admin, section, data, field, kept):
    integration_id = create(emulator, admin)
    page = refuse(emulator, admin, integration_id, section, data)
    topic = section.split("/")[-1]
    name = f"webhook-{topic}" if section.startswith("webhooks") else section
    assert f'aria-invalid="true" aria-describedby="error-{name}-{field}"' in page
    assert re.search(rf'<span class="field-error" id="error-{name}-{field}">[^<]+</span>', page)
    assert kept in page and page.count('aria-invalid="true"') == 1


@pytest.mark.parametrize("data, field", [({"name": "helpdesk", "description": "typed words"}, "name"),
                                         ({"name": "New one", "description": "x" * 501}, "description")])
def test_a_refused_new_integration_keeps_what_was_typed(emulator, admin, data, field):
    page = admin.post(f"{emulator.url}/admin/integrations", data=data)
    assert page.status_code == 400 and f'aria-describedby="error-create-{field}"' in page.text
    assert data["description"] in page.text and f'value="{data["name"]}"' in page.text


def test_discoverable_needs_message_any_member(emulator, admin):
    integration_id = create(emulator, admin)
    page = refuse(emulator, admin, integration_id, "visibility", {"enabled": "on", "discoverable": "on"})
    assert "needs the &#39;Message any member&#39; permission" in page
    save(emulator, admin, integration_id, "permissions", {"permissions": ["Message any member", "Link previews"]})
    save(emulator, admin, integration_id, "visibility", {"enabled": "on", "discoverable": "on"})
    saved = emulator.state.integrations.get(integration_id)
    assert saved.listed and saved.permissions == ["Message any member", "Link previews"]
    save(emulator, admin, integration_id, "permissions", {"permissions": ["Link previews"]})
    assert not emulator.state.integrations.get(integration_id).discoverable


def test_a_webhook_is_saved_only_when_the_handshake_succeeds(emulator, admin, callback):
    integration_id = create(emulator, admin)
    url = f"{callback.url}/webhooks/standup"
    page = refuse(emulator, admin, f"{integration_id}/webhooks", "page",
                  {"callback_url": url, "verify_token": "wrong", "fields": ["messages"]})
    assert "Not saved: the verification request failed" in page and "HTTP 403" in page
    assert 'value="wrong"' in page
    assert emulator.state.integrations.subscriptions(integration_id) == {}
    page = save(emulator, admin, f"{integration_id}/webhooks", "page",
                {"callback_url": url, "verify_token": VERIFY, "fields": ["messages", "mention"]})
    assert "answered the verification request" in page
    assert emulator.state.integrations.subscriptions(integration_id)["page"].fields == ["messages", "mention"]
    save(emulator, admin, f"{integration_id}/webhooks/page", "delete", {})
    assert emulator.state.integrations.subscriptions(integration_id) == {}


def test_security_settings_are_saved_and_checked(emulator, admin):
    integration_id = create(emulator, admin)
    assert "Not saved" in refuse(emulator, admin, integration_id, "security", {"ip_allow": "not-an-ip"})
    save(emulator, admin, integration_id, "security", {"ip_allow": "10.0.0.0/8\n127.0.0.1", "require_proof": "on"})
    saved = emulator.state.integrations.get(integration_id)
    assert saved.require_proof and saved.ip_allowed("127.0.0.1") and not saved.ip_allowed("192.0.2.1")


def test_link_domains_faults_and_groups_are_saved_and_checked(emulator, admin):
    integration_id = create(emulator, admin)
    assert "is not a domain name" in refuse(emulator, admin, integration_id, "domains", {"domains": "not a domain!"})
    save(emulator, admin, integration_id, "domains", {"domains": "Wiki.Example.com\ndocs.example.org"})
    assert "0 to 100 %" in refuse(emulator, admin, integration_id, "faults", {"error_rate": "150", "latency_ms": "0"})
    save(emulator, admin, integration_id, "faults", {"error_rate": "25", "latency_ms": "200"})
    save(emulator, admin, integration_id, "groups", {"groups": ["1500000000000001"]})
    saved = emulator.state.integrations.get(integration_id)
    assert saved.link_domains == ["docs.example.org", "wiki.example.com"]
    assert (saved.error_rate, saved.latency_ms) == (0.25, 200)
    assert saved.page_id in emulator.state.community.members("1500000000000001")


def test_a_reset_token_and_a_deleted_integration_stop_working(emulator, admin):
    integration_id = create(emulator, admin)
    save(emulator, admin, integration_id, "permissions", {"permissions": ["Message any member"]})
    old = emulator.state.integrations.get(integration_id)
    assert "the old token stopped working" in save(emulator, admin, integration_id, "token", {})
    new = emulator.state.integrations.get(integration_id)
    send = {"recipient": {"id": DANA}, "message": {"text": "hi"}}
    with pytest.raises(GraphError):
        GraphClient(emulator.url, old.access_token, old.app_secret, retry=RetryPolicy(attempts=1)).post(
            "me/messages", send)
    graph = GraphClient(emulator.url, new.access_token, new.app_secret, retry=RetryPolicy(attempts=1))
    assert graph.post("me/messages", send)["recipient_id"] == DANA
    assert "type the integration&#39;s name" in refuse(emulator, admin, integration_id, "delete", {"confirm": "nope"})
    page = save(emulator, admin, integration_id, "delete", {"confirm": "Standup bot"})
    assert "Deleted Standup bot" in page and emulator.state.integrations.get(integration_id) is None
    with pytest.raises(GraphError) as caught:
        graph.post("me/messages", send)
    assert caught.value.code == 190


def test_last_api_request_shows_seven_days_and_the_latest_calls(emulator, admin):
    bot = emulator.state.integrations.by_name("helpdesk")
    emulator.state.integrations.record_call(bot.id, "POST", "me/messages", 401, 190)
    page = admin.get(f"{emulator.url}/admin/integrations/{bot.id}").text
    assert page.count('class="bar"') == 7
    assert "HTTP 401, refused: Graph error 190" in page


def test_a_post_from_another_site_is_refused(emulator, admin):
    bot = emulator.state.integrations.by_name("helpdesk")
    page = admin.post(f"{emulator.url}/admin/integrations/{bot.id}/visibility", data={},
                      headers={"Origin": "http://evil.example"})
    assert page.status_code == 403 and emulator.state.integrations.get(bot.id).enabled


def test_the_live_part_of_the_page_reloads_alone(emulator, admin):
    bot = emulator.state.integrations.by_name("helpdesk")
    part = admin.get(f"{emulator.url}/admin/integrations/{bot.id}/live").text
    assert 'id="usage"' in part and 'id="deliveries"' in part and "<html" not in part


def test_a_reset_app_secret_signs_the_next_deliveries(emulator, admin, callback):
    bot = emulator.state.integrations.by_name("helpdesk")
    assert "App Secret reset" in save(emulator, admin, bot.id, "secret", {})
    secret = emulator.state.integrations.get(bot.id).app_secret
    assert secret != bot.app_secret
    thread, _ = emulator.state.community.direct_thread(DANA, bot.page_id)
    emulator.state.activity.say(thread["id"], DANA, "help")
    assert emulator.state.courier.wait_idle()
    delivery = callback.deliveries[-1]
    assert verify(delivery["raw"], {SHA256_HEADER: delivery["headers"][SHA256_HEADER]}, [secret]) == "sha256"

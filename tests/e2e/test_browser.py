"""The local Workplace in a real browser (Debian's Chromium driven by Playwright), against the
example bots under gunicorn: what a newcomer does after `make run`.

The two servers run as processes, wired to each other as `make run` wires them. Tests share them
and run in file order; each acts as a different person, and the ones that break an integration
(token reset, disabling) come last. Every test leaves a screenshot in artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bots.signature import timed_proof

from .test_gunicorn import GUNICORN, ROOT, free_port, stop, wait_for

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "artifacts" / "screenshots"
CREDENTIALS = {"HELPDESK_APP_SECRET": "browser-secret-0123456789", "HELPDESK_ACCESS_TOKEN": "browser-token-helpdesk",
               "HELPDESK_VERIFY_TOKEN": "browser-verify-helpdesk", "HELPDESK_APP_ID": "111111111111111",
               "DOCS_APP_SECRET": "browser-docs-secret-0123", "DOCS_ACCESS_TOKEN": "browser-token-docs",
               "DOCS_VERIFY_TOKEN": "browser-verify-docs", "DOCS_APP_ID": "222222222222222"}
HELPDESK_ID, DOCS_ID = CREDENTIALS["HELPDESK_APP_ID"], CREDENTIALS["DOCS_APP_ID"]
IT_HELP, PLANNING = "1500000000000001", "1500000000000002"
ADMINISTRATOR = "Jordan Lee"


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    full = {"PATH": os.environ["PATH"], "DOTENV": "0", **CREDENTIALS, **env}
    return subprocess.Popen(args, cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def workplace(tmp_path_factory) -> Iterator[str]:
    """The emulator and the bot server, each pointing at the other; yields the emulator's URL."""
    data = tmp_path_factory.mktemp("workplace")
    emulator_port, bots_port = free_port(), free_port()
    emulator_url, bots_url = f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{bots_port}"
    emulator = start([sys.executable, "-m", "emulator", "--port", str(emulator_port), "--db",
                      str(data / "emulator.sqlite3")], {"EMULATOR_BOT_URL": bots_url})
    bots = start([str(GUNICORN), "app:app", "--bind", f"127.0.0.1:{bots_port}", "--workers", "1", "--threads", "4",
                  "--worker-class", "gthread", "--graceful-timeout", "3"],
                 {"GRAPH_API_URL": emulator_url, "DATA_DIR": str(data / "bots")})
    try:
        wait_for(f"{emulator_url}/_emulator/calls", emulator)
        wait_for(f"{bots_url}/healthz", bots)
        yield emulator_url
    finally:
        stop(bots)
        stop(emulator)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, workplace: str, request) -> Iterator[Page]:
    context = browser.new_context(base_url=workplace, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    SHOTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def be(page: Page, name: str) -> None:
    """Pick who you are on the home page."""
    page.goto("/work/")
    page.get_by_role("button", name=re.compile(name)).click()
    expect(page.locator("#viewer-select")).to_have_value(re.compile(r"\d+"))


def be_the_administrator(page: Page) -> None:
    """Sign in as the seeded Administrator, the one person the Admin Panel lets in."""
    be(page, ADMINISTRATOR)
    expect(page.locator("#me-role")).to_have_text("Administrator")


def switch_to(page: Page, name: str) -> None:
    """Switch person with the selector at the top, staying on the page."""
    page.locator("#viewer-select").select_option(label=name)
    page.wait_for_load_state()


def graph(workplace: str, method: str, path: str, token: str, **kwargs) -> requests.Response:
    """A Graph call as a bot would make it (the seeded integrations require app secret proof)."""
    secret = next(CREDENTIALS[k.replace("ACCESS_TOKEN", "APP_SECRET")] for k, v in CREDENTIALS.items() if v == token)
    return requests.request(method, f"{workplace}/{path}", headers={"Authorization": f"Bearer {token}"},
                            params=timed_proof(token, secret), timeout=10, **kwargs)


def test_create_an_integration_and_subscribe_its_webhooks(page: Page, workplace: str):
    be_the_administrator(page)
    page.goto("/admin/")
    page.get_by_label("Name").fill("Standup bot")
    page.get_by_label("Description").fill("Asks the team for their daily update")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("h1.title")).to_contain_text("Standup bot")
    expect(page.locator("#app-id")).to_have_text(re.compile(r"^\d{15}$"))
    page.locator("#permissions").get_by_label("Message any member").check()
    page.get_by_role("button", name="Save permissions").click()
    expect(page.locator("#permissions .flash.ok")).to_have_text("Saved.")
    hook = page.locator("#webhook-page")
    callback = workplace.replace(workplace.rsplit(":", 1)[1], "1") + "/webhooks/helpdesk"
    hook.get_by_label("Callback URL").fill(callback)
    hook.get_by_label("Verify token").fill("wrong-token")
    hook.get_by_label("messages", exact=True).check()
    hook.get_by_role("button", name="Save page webhook").click()
    expect(page.locator("#webhook-page .field-error")).to_contain_text("Not saved")
    expect(hook.get_by_label("Verify token")).to_have_value("wrong-token")
    bots_url = page.request.get(f"{workplace}/admin/integrations/{HELPDESK_ID}").text()
    live_callback = re.search(r'value="(http://127\.0\.0\.1:\d+/webhooks/helpdesk)"', bots_url).group(1)
    hook = page.locator("#webhook-page")
    hook.get_by_label("Callback URL").fill(live_callback)
    hook.get_by_label("Verify token").fill(CREDENTIALS["HELPDESK_VERIFY_TOKEN"])
    hook.get_by_role("button", name="Save page webhook").click()
    expect(page.locator("#webhook-page .flash.ok")).to_contain_text("answered the verification request")
    expect(page.locator("#webhook-page .badge")).to_have_text("subscribed")


def test_the_admin_panel_signs_in_an_administrator(page: Page):
    page.goto(f"/admin/integrations/{HELPDESK_ID}")
    expect(page).to_have_url(re.compile(r"/work/\?next=/admin/integrations/"))
    page.get_by_role("button", name=re.compile("Dana Whitfield")).click()
    expect(page.locator("h1")).to_have_text("Administrators only")
    expect(page.locator("#signed-in")).to_contain_text("Dana Whitfield Employee")
    page.get_by_role("button", name="Switch to Jordan Lee (Administrator)").click()
    expect(page).to_have_url(re.compile(f"/admin/integrations/{HELPDESK_ID}$"))
    expect(page.locator("#signed-in")).to_contain_text("Jordan Lee Administrator")
    expect(page.get_by_role("link", name="Admin Panel")).to_be_visible()


def test_chat_with_the_helpdesk_through_quick_replies_and_the_menu(page: Page):
    be(page, "Dana Whitfield")
    page.get_by_role("link", name="Work Chat").click()
    page.locator(".bot-directory").get_by_role("link", name=re.compile("helpdesk")).click()
    messages = page.locator("#messages")
    expect(messages).to_contain_text("What do you need help with?")
    page.get_by_role("button", name="Printer").click()
    expect(messages).to_contain_text("Which floor is the printer on?")
    page.get_by_role("button", name="Floor 2").click()
    last = messages.locator(".message").last
    expect(last).to_contain_text(re.compile(r"Ticket HD-|What is wrong with it"))
    if "What is wrong" in last.inner_text():  # the helpdesk may ask for a description first
        page.get_by_placeholder("Write a message").fill("paper jam")
        page.get_by_role("button", name="Send").click()
    expect(messages).to_contain_text(re.compile(r"Ticket HD-\w+ is open for the printer on floor 2"))
    page.get_by_title("Menu").click()
    page.locator("#menu").get_by_role("button", name="Talk to a human").click()
    expect(messages).to_contain_text("An IT colleague will message you here shortly.")
    page.get_by_placeholder("Write a message").fill("help")
    page.get_by_role("button", name="Send").click()
    expect(messages.locator(".message").last).to_contain_text("What do you need?")


def test_button_and_generic_templates_typing_and_seen(page: Page, workplace: str):
    be(page, "Sam Okafor")
    page.get_by_role("link", name="Work Chat").click()
    page.locator(".bot-directory").get_by_role("link", name=re.compile("helpdesk")).click()
    messages = page.locator("#messages")
    expect(messages).to_contain_text("What do you need help with?")
    token = CREDENTIALS["HELPDESK_ACCESS_TOKEN"]
    card = {"attachment": {"type": "template", "payload": {"template_type": "button", "text": "Your laptop is ready",
            "buttons": [{"type": "postback", "title": "Show the menu", "payload": "MENU"},
                        {"type": "web_url", "title": "Pick-up desk", "url": "https://status.example.com"}]}}}
    sam = "100071234567891"
    assert graph(workplace, "POST", "me/messages", token, json={"recipient": {"id": sam}, "message": card}).ok
    expect(messages).to_contain_text("Your laptop is ready")
    expect(page.get_by_role("link", name="Pick-up desk")).to_have_attribute("href", "https://status.example.com")
    graph(workplace, "POST", "me/messages", token, json={"recipient": {"id": sam}, "sender_action": "typing_on"})
    expect(page.locator("#typing")).to_have_text("helpdesk is typing…")
    page.get_by_role("button", name="Show the menu").click()
    expect(messages.locator(".message").last).to_contain_text("What do you need?")
    expect(page.locator("#typing")).to_be_hidden()
    graph(workplace, "POST", "me/messages", token, json={"recipient": {"id": sam}, "sender_action": "mark_seen"})
    expect(messages.locator(".seen")).to_have_text("Seen")
    cards = {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
        {"title": "Laptop 14-inch", "subtitle": "Ready at the IT desk", "buttons": [
            {"type": "postback", "title": "Talk to a human", "payload": "HUMAN"}]}]}}}
    assert graph(workplace, "POST", "me/messages", token, json={"recipient": {"id": sam}, "message": cards}).ok
    card = messages.locator(".card-element", has_text="Laptop 14-inch")
    expect(card).to_contain_text("Ready at the IT desk")
    card.get_by_role("button", name="Talk to a human").click()
    expect(messages.locator(".message").last).to_contain_text("An IT colleague will message you here shortly.")


def test_mention_a_bot_in_a_group_and_see_its_comment(page: Page):
    be(page, "Jordan Lee")
    page.goto(f"/work/groups/{IT_HELP}")
    page.get_by_placeholder("Write something, or @mention a bot").fill("@helpdesk my screen stays black")
    page.get_by_role("button", name="Post").click()
    post = page.locator(".post", has_text="my screen stays black")
    expect(post.locator(".mention")).to_have_text("@helpdesk")
    expect(post.locator(".comment")).to_contain_text("On it. For anything private, message me directly")
    post.get_by_placeholder("Write a comment").fill("#it also the dock is dead")
    post.get_by_role("button", name="Comment").click()
    expect(post.locator(".comment").last).to_contain_text(re.compile(r"Logged as ticket HD-\w+"))


def test_a_docs_link_previews_for_one_person_and_not_another(page: Page):
    be(page, "Dana Whitfield")
    page.goto(f"/work/groups/{PLANNING}")
    page.get_by_placeholder("Write something, or @mention a bot").fill(
        "Plan: https://docs.example.com/d/q3-plan and policy: https://docs.example.com/d/travel-policy")
    page.get_by_role("button", name="Post").click()
    post = page.locator(".post", has_text="Plan:").first
    expect(post.locator(".preview")).to_have_count(2)
    expect(post.locator(".preview").first).to_contain_text("Q3 planning")
    switch_to(page, "Alex Chen")
    post = page.locator(".post", has_text="Plan:").first
    expect(post.locator(".preview")).to_have_count(1)
    expect(post.locator(".preview")).to_contain_text("Travel policy")
    expect(post).not_to_contain_text("Q3 planning")


def test_share_a_document_from_the_composer(page: Page):
    be(page, "Sam Okafor")
    page.goto(f"/work/groups/{PLANNING}")
    page.get_by_role("button", name="Share a document").click()
    page.locator("#documents").get_by_role("button", name=re.compile("Q3 planning")).click()
    expect(page.locator("#post-text")).to_have_value("https://docs.example.com/d/q3-plan")
    expect(page.locator("#documents")).not_to_contain_text("Salary bands")


def test_a_reset_token_refuses_the_bots_calls(page: Page, workplace: str):
    be_the_administrator(page)
    page.goto(f"/admin/integrations/{DOCS_ID}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset access token").click()
    expect(page.locator("#credentials .flash.ok")).to_contain_text("the old token stopped working")
    be(page, "Maria Garcia")
    page.get_by_role("link", name="Work Chat").click()
    page.locator(".bot-directory").get_by_role("link", name=re.compile("docs")).click()
    page.get_by_placeholder("Write a message").fill("find travel")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#messages")).to_contain_text("find travel")
    be_the_administrator(page)
    page.goto(f"/admin/integrations/{DOCS_ID}#usage")
    refused = page.locator("#recent-calls tr.refused", has_text="me/messages").first
    expect(refused).to_contain_text("HTTP 401, refused: Graph error 190")
    old = graph(workplace, "GET", "me", CREDENTIALS["DOCS_ACCESS_TOKEN"])
    assert old.status_code == 401 and old.json()["error"]["code"] == 190


def test_a_disabled_integration_is_refused_and_hidden(page: Page, workplace: str):
    be_the_administrator(page)
    page.goto(f"/admin/integrations/{HELPDESK_ID}")
    page.locator("#visibility").get_by_label("Enabled").uncheck()
    page.get_by_role("button", name="Save visibility").click()
    expect(page.locator("#visibility .flash.ok")).to_contain_text("disabled")
    expect(page.locator("h1.title .badge")).to_have_text("disabled")
    answer = graph(workplace, "GET", "me", CREDENTIALS["HELPDESK_ACCESS_TOKEN"])
    assert answer.status_code == 403 and answer.json()["error"]["code"] == 10
    be(page, "Priya Raman")
    page.get_by_role("link", name="Work Chat").click()
    expect(page.locator(".bot-directory")).not_to_contain_text("helpdesk")
    expect(page.locator(".bot-directory")).to_contain_text("docs")
    be_the_administrator(page)
    page.goto(f"/admin/integrations/{HELPDESK_ID}")
    page.locator("#visibility").get_by_label("Enabled").check()
    page.get_by_role("button", name="Save visibility").click()
    expect(page.locator("h1.title .badge")).to_have_text("enabled")
    assert graph(workplace, "GET", "me", CREDENTIALS["HELPDESK_ACCESS_TOKEN"]).ok


def test_a_person_sets_their_status_from_the_header(page: Page):
    be(page, "Maria Garcia")
    page.get_by_label("Status").fill("In a meeting")
    page.get_by_role("button", name="Set status").click()
    expect(page.locator("#status-note")).to_have_text("Status set: In a meeting")
    page.get_by_label("Status").fill("x" * 140 + "y")
    expect(page.get_by_label("Status")).to_have_value("x" * 140)

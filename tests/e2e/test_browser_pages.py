"""The local Workplace's pages hold up as people use them, in a real browser at a phone's width:
no page scrolls sideways at 390 px, a 2000-character word wraps, a refused form keeps what was
typed, messages and posts show their time, a deleted bot's chat takes no input, and no page load
logs an error or a failed request (a logo that does not load, a missing favicon).

The emulator and the bot server run as processes (the fixtures of test_browser.py); tests run in
file order, and the last one deletes the integration the module creates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from .test_browser import ADMINISTRATOR, HELPDESK_ID, IT_HELP, PLANNING, SHOTS, be, browser, workplace

__all__ = ["browser", "workplace"]  # the fixtures this module shares with test_browser.py

PHONE = {"width": 390, "height": 844}
WORD = "x" * 2000
#: An integration name that is one 80-character word, shown in the bot directory.
LONG_NAME = "Logobot" + "o" * 73
UNREACHABLE_LOGO = "http://127.0.0.1:9/logo.png"


@dataclass
class Problems:
    """What went wrong while a page loaded: console errors, uncaught errors, failed and refused requests."""

    seen: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", lambda message: message.type == "error" and self.seen.append(f"console: {message.text}"))
        page.on("pageerror", lambda error: self.seen.append(f"uncaught: {error}"))
        page.on("requestfailed", lambda request: self.seen.append(f"failed: {request.url} {request.failure}"))
        page.on("response", lambda response: response.status >= 400 and self.seen.append(
            f"HTTP {response.status}: {response.url}"))


@pytest.fixture
def phone(browser: Browser, workplace: str, request) -> Iterator[BrowserContext]:
    """A browser at a phone's width (390 px); each test leaves a screenshot of its last page."""
    context = browser.new_context(base_url=workplace, viewport=PHONE)
    context.set_default_timeout(10_000)
    yield context
    SHOTS.mkdir(parents=True, exist_ok=True)
    if context.pages:
        context.pages[-1].screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def within_the_width(page: Page, name: str) -> bool:
    """Whether the button ``name`` sits inside the phone's width (a long word pushes it off to the right)."""
    box = page.get_by_role("button", name=name).first.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def signed_in(context: BrowserContext, name: str) -> Page:
    page = context.new_page()
    be(page, name)
    return page


def loaded(context: BrowserContext, path: str) -> tuple[Page, Problems]:
    """A new tab that opened ``path`` and settled (its scripts fetched what they fetch first)."""
    page = context.new_page()
    problems = Problems()
    problems.watch(page)
    page.goto(path)
    page.wait_for_timeout(1500)  # not "networkidle": a page keeps listening for what changes
    return page, problems


def helpdesk_thread(page: Page) -> str:
    page.goto("/work/chat")
    page.locator(".bot-directory").get_by_role("link", name=re.compile("helpdesk")).click()
    expect(page.locator("#messages")).to_contain_text("What do you need help with?")
    return page.url.rsplit("/", 1)[1]


def test_an_integration_with_a_long_name_and_a_logo_that_does_not_load(phone: BrowserContext):
    page = signed_in(phone, ADMINISTRATOR)
    page.goto("/admin/")
    page.get_by_label("Name").fill(LONG_NAME)
    page.get_by_role("button", name="Create").click()
    integration_id = re.search(r"/admin/integrations/(\d+)", page.url).group(1)
    page.request.post(f"/admin/integrations/{integration_id}/permissions", form={"permissions": "Message any member"})
    page.request.post(f"/admin/integrations/{integration_id}/visibility", form={"enabled": "on", "discoverable": "on"})
    page.request.post(f"/admin/integrations/{integration_id}/details",
                      form={"name": LONG_NAME, "logo_url": UNREACHABLE_LOGO})
    page.goto("/work/chat")
    entry = page.locator(".bot-directory li", has_text=LONG_NAME)
    expect(entry.locator(".avatar.bot")).to_have_text("L")
    expect(entry.locator("img")).to_have_count(0)


@pytest.mark.parametrize("who, path", [
    (None, "/work/"),
    ("Dana Whitfield", "/work/"),
    ("Dana Whitfield", "/work/chat"),
    ("Dana Whitfield", "thread"),
    ("Dana Whitfield", f"/work/groups/{IT_HELP}"),
    ("Dana Whitfield", f"/work/groups/{PLANNING}"),
    ("Dana Whitfield", "/admin/"),
    (ADMINISTRATOR, "/admin/"),
    (ADMINISTRATOR, f"/admin/integrations/{HELPDESK_ID}"),
])
def test_no_page_scrolls_sideways_at_390_px_or_logs_a_problem(phone: BrowserContext, who, path):
    if who:
        page = signed_in(phone, who)
        path = f"/work/chat/{helpdesk_thread(page)}" if path == "thread" else path
        page.close()
    page, problems = loaded(phone, path)
    if path == "/admin/" and who != ADMINISTRATOR:
        problems.seen = [p for p in problems.seen if "403" not in p]  # the 403 page itself, and its console line
        expect(page.locator("h1")).to_have_text("Administrators only")
    assert width(page) <= PHONE["width"], f"{path} is {width(page)} px wide"
    assert problems.seen == []


def test_the_favicon_is_served(phone: BrowserContext):
    page, problems = loaded(phone, "/work/")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    for path in (icon, "/favicon.ico"):
        answer = page.request.get(path)
        assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    assert problems.seen == []


def test_a_2000_character_word_in_chat_keeps_the_page_width_and_the_send_button(phone: BrowserContext):
    page = signed_in(phone, "Priya Raman")
    helpdesk_thread(page)
    page.get_by_placeholder("Write a message").fill(WORD)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#messages .message.mine", has_text=WORD[:50])).to_be_visible()
    assert width(page) <= PHONE["width"] and within_the_width(page, "Send")
    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()


def test_a_2000_character_word_in_a_post_and_a_comment_keeps_the_page_width(phone: BrowserContext):
    page = signed_in(phone, "Alex Chen")
    page.goto(f"/work/groups/{PLANNING}")
    page.get_by_placeholder("Write something, or @mention a bot").fill(WORD)
    page.get_by_role("button", name="Post").click()
    post = page.locator(".post", has_text=WORD[:50]).first
    expect(post).to_be_visible()
    post.get_by_placeholder("Write a comment").fill("y" * 2000)
    post.get_by_role("button", name="Comment").click()
    expect(post.locator(".comment")).to_contain_text("yyyy")
    assert width(page) <= PHONE["width"] and within_the_width(page, "Post") and within_the_width(page, "Comment")


def test_messages_posts_and_comments_show_their_time(phone: BrowserContext):
    page = signed_in(phone, "Sam Okafor")
    helpdesk_thread(page)
    stamp = page.locator("#messages .message time.when").first
    expect(stamp).to_have_text(re.compile(r"\d"))
    assert abs(datetime.fromisoformat(stamp.get_attribute("datetime")).timestamp() - datetime.now().timestamp()) < 600
    page.goto(f"/work/groups/{IT_HELP}")
    welcome = page.locator(".post", has_text="Welcome to IT Help")
    expect(welcome.locator(":scope > time.when")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    page.get_by_placeholder("Write something, or @mention a bot").fill("@helpdesk the wifi is down")
    page.get_by_role("button", name="Post").click()
    comment = page.locator(".post", has_text="the wifi is down").locator(".comment").first
    expect(comment.locator("time.when")).to_have_attribute("datetime", re.compile(r"T\d\d:\d\d"))


def test_a_refused_form_keeps_what_was_typed_and_marks_the_field(phone: BrowserContext):
    page = signed_in(phone, ADMINISTRATOR)
    page.goto("/admin/")
    page.get_by_label("Name").fill("helpdesk")
    page.get_by_label("Description").fill("Typed words that must not be lost")
    page.get_by_role("button", name="Create").click()
    name = page.locator("#create-form input[name=name]")
    expect(name).to_have_value("helpdesk")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-create-name")).to_have_text(re.compile("exists already"))
    expect(page.get_by_label("Description")).to_have_value("Typed words that must not be lost")
    page.goto(f"/admin/integrations/{HELPDESK_ID}")
    details = page.locator("#details")
    details.get_by_label("Description").fill("A new description, kept")
    details.get_by_label("Logo URL").fill("ftp://logo.example/x.png")
    page.get_by_role("button", name="Save details").click()
    logo = page.locator("#details input[name=logo_url]")
    expect(logo).to_have_attribute("aria-invalid", "true")
    expect(logo).to_have_value("ftp://logo.example/x.png")
    expect(page.locator("#details textarea[name=description]")).to_have_value("A new description, kept")
    expect(page.locator("#error-details-logo_url")).to_contain_text("http:// or https://")
    assert width(page) <= PHONE["width"]


def test_a_deleted_bots_chat_says_so_and_takes_no_input(phone: BrowserContext):
    page = signed_in(phone, "Maria Garcia")
    page.goto("/work/chat")
    page.locator(".bot-directory").get_by_role("link", name=re.compile(LONG_NAME[:20])).click()
    thread = page.url.rsplit("/", 1)[1]
    admin = signed_in(phone.browser.new_context(base_url=page.url.split("/work/")[0]), ADMINISTRATOR)
    admin.goto("/admin/")
    admin.get_by_role("link", name=LONG_NAME).click()
    admin.locator("#delete").get_by_label("to confirm").fill(LONG_NAME)
    admin.get_by_role("button", name="Delete integration").click()
    expect(admin.locator(".flash.ok")).to_contain_text("Deleted")
    admin.context.close()
    page, problems = loaded(phone, f"/work/chat/{thread}")
    expect(page.locator("#closed")).to_contain_text("This integration was deleted")
    expect(page.locator("#thread-title")).to_have_text("Deleted integration")
    expect(page.locator("#composer-text")).to_be_disabled()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(page.locator("#chat-list")).to_contain_text("Deleted integration")
    answer = page.request.post(f"/work/api/threads/{thread}/messages", data={"text": "anyone?"})
    assert answer.status == 409 and "deleted" in answer.json()["error"]["message"]
    assert problems.seen == []


def test_a_permalink_opens_the_group_at_the_post_it_names_marked(phone: BrowserContext):
    page = signed_in(phone, "Alex Chen")
    posted = [page.request.post(f"/work/api/groups/{PLANNING}/posts", data={"message": f"status update {n}"}).json()
              for n in range(12)]
    first = posted[0]["id"]
    page.goto(f"/work/groups/{PLANNING}?post={first}")
    target = page.locator(f"#post-{first}")
    expect(target).to_have_class(re.compile(r"\blinked\b"))
    expect(target).to_be_in_viewport()
    expect(page.locator(".post.linked")).to_have_count(1)

"""Take the README's screenshots (docs/*.png) with Debian's Chromium: the emulator and the example
bots run on free ports with a fresh database, and a person chats (also at a phone's width), posts a
document link, and the Administrator opens an integration. Run: .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from playwright.sync_api import Browser, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CREDENTIALS = {"HELPDESK_APP_SECRET": "demo-secret-helpdesk", "HELPDESK_ACCESS_TOKEN": "demo-token-helpdesk",
               "HELPDESK_VERIFY_TOKEN": "demo-verify-helpdesk", "HELPDESK_APP_ID": "111111111111111",
               "DOCS_APP_SECRET": "demo-secret-docs", "DOCS_ACCESS_TOKEN": "demo-token-docs",
               "DOCS_VERIFY_TOKEN": "demo-verify-docs", "DOCS_APP_ID": "222222222222222"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str) -> None:
    for _ in range(100):
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def main() -> int:
    data = Path(tempfile.mkdtemp())
    ports = free_port(), free_port()
    emulator_url, bots_url = (f"http://127.0.0.1:{port}" for port in ports)
    env = {"PATH": os.environ["PATH"], "DOTENV": "0", **CREDENTIALS}
    processes = [
        subprocess.Popen([sys.executable, "-m", "emulator", "--port", str(ports[0]), "--db", str(data / "e.sqlite3")],
                         cwd=ROOT, env={**env, "EMULATOR_BOT_URL": bots_url}, stderr=subprocess.DEVNULL),
        subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "app:app", "--bind", f"127.0.0.1:{ports[1]}",
                          "--worker-class", "gthread", "--threads", "4"], cwd=ROOT, stderr=subprocess.DEVNULL,
                         env={**env, "GRAPH_API_URL": emulator_url, "DATA_DIR": str(data / "bots")}),
    ]
    try:
        wait_for(f"{emulator_url}/_emulator/calls")
        wait_for(f"{bots_url}/healthz")
        shoot(emulator_url)
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
    return 0


def phone(browser: Browser, url: str, chat: str) -> None:
    """Work Chat at a phone's width (390 px), signed in as the same person, in a context of its own."""
    context = browser.new_context(base_url=url, viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    page.goto("/work/")
    page.get_by_role("button", name=re.compile("Dana Whitfield")).click()
    page.goto(chat)
    expect(page.locator("#messages .message").last).to_contain_text("What do you need?")
    page.locator("#composer-text").scroll_into_view_if_needed()
    page.screenshot(path=str(DOCS / "work-chat-phone.png"))
    context.close()


def shoot(url: str) -> None:
    DOCS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(base_url=url, viewport={"width": 1280, "height": 760})
        page.goto("/work/")
        page.get_by_role("button", name=re.compile("Dana Whitfield")).click()
        page.locator(".bot-directory").get_by_role("link", name=re.compile("helpdesk")).click()
        page.get_by_role("button", name="Printer").click()
        page.get_by_role("button", name="Floor 2").click()
        page.get_by_placeholder("Write a message").fill("help")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("#messages .message").last).to_contain_text("What do you need?")
        page.screenshot(path=str(DOCS / "work-chat.png"))
        phone(browser, url, page.url)
        page.goto("/work/groups/1500000000000002")
        page.get_by_placeholder("Write something, or @mention a bot").fill(
            "@docs here is the travel policy: https://docs.example.com/d/travel-policy")
        page.get_by_role("button", name="Post").click()
        expect(page.locator(".preview")).to_have_count(2)
        page.screenshot(path=str(DOCS / "group-previews.png"))
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto("/work/")
        page.get_by_role("button", name=re.compile("Jordan Lee")).click()  # the Administrator opens the Admin Panel
        page.goto("/admin/integrations/111111111111111#visibility")
        page.screenshot(path=str(DOCS / "admin-panel.png"))
        browser.close()
    print("wrote docs/work-chat.png, docs/work-chat-phone.png, docs/group-previews.png, docs/admin-panel.png")


if __name__ == "__main__":
    sys.exit(main())

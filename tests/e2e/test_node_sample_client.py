"""A Node.js bot written the way Meta's Workplace samples talk to Graph (tests/e2e/node_client) runs
against the local Workplace unchanged: handshake, sha1-signed deliveries, a reply through /me/messages,
a persistent menu in bracket form and a page subscription with messaging_optins (issue 15)."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from emulator import create_app

CLIENT = Path(__file__).parent / "node_client" / "sample_bot.js"
NODE = shutil.which("node")
SECRET, TOKEN, VERIFY = "node-sample-secret-0123", "node-sample-token", "node-sample-verify"
DANA = "100071234567890"

pytestmark = pytest.mark.skipif(NODE is None, reason="needs node")


@pytest.fixture
def workplace(serve):
    """The local Workplace with the helpdesk integration set up as a sample deploys it (no proof)."""
    app = create_app({"HELPDESK_APP_SECRET": SECRET, "HELPDESK_ACCESS_TOKEN": TOKEN,
                      "HELPDESK_VERIFY_TOKEN": VERIFY, "EMULATOR_RETRY_DELAYS": "0.05,0.1"})
    app.url = serve(app)
    state = app.extensions["emulator"]
    app.helpdesk = state.integrations.by_name("helpdesk")
    state.integrations.update(app.helpdesk.id, require_proof=0)
    yield app
    state.close()


@pytest.fixture
def client(workplace):
    """The Node bot, running, and a queue of the JSON lines it prints."""
    env = {"GRAPH": workplace.url, "ACCESS_TOKEN": TOKEN, "APP_ID": workplace.helpdesk.id, "APP_SECRET": SECRET,
           "VERIFY_TOKEN": VERIFY, "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([NODE, str(CLIENT)], env=env, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[dict] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(json.loads(line)) for line in process.stdout], daemon=True).start()
    process.lines = lines
    yield process
    process.terminate()
    process.wait(timeout=10)


def next_with(lines: queue.Queue, key: str, timeout: float = 15) -> dict:
    """The next line the client printed that has ``key``, skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        assert "error" not in line, line
        if key in line:
            return line[key]


def test_a_sample_style_node_bot_sets_up_and_answers_a_person(workplace, client):
    port = next_with(client.lines, "listening")
    assert next_with(client.lines, "handshake") is True
    setup = next_with(client.lines, "setup")
    assert setup["menu"] == {"status": 200, "body": {"result": "success"}}
    assert setup["subscription"] == {"status": 200, "body": {"success": True}}
    helpdesk = workplace.extensions["emulator"].integrations.get(workplace.helpdesk.id)
    assert helpdesk.profile["persistent_menu"][0]["call_to_actions"][0]["payload"] == "FILE_NEW_CLAIM"

    dana = requests.Session()
    dana.post(f"{workplace.url}/work/viewer", data={"person_id": DANA}, allow_redirects=False)
    thread, _ = workplace.extensions["emulator"].community.direct_thread(DANA, helpdesk.page_id)
    dana.post(f"{workplace.url}/work/api/threads/{thread['id']}/messages", json={"text": "hello"}).raise_for_status()
    reply = next_with(client.lines, "reply")
    assert reply["status"] == 200 and reply["body"]["recipient_id"] == DANA
    texts = [m["body"].get("text") for m in workplace.extensions["emulator"].community.messages(thread["id"])]
    assert texts == ["hello", "echo: hello"]

    forged = requests.post(f"http://127.0.0.1:{port}/webhook", data=b'{"object":"page","entry":[]}',
                           headers={"X-Hub-Signature": "sha1=" + "0" * 40}, timeout=5)
    assert forged.status_code == 403 and next_with(client.lines, "delivery") == "refused"

"""Zero-step onboarding under `make run` (issue 14 part 1), with real processes: scripts/dev.py on free ports in
a copy of the project, a ten-line bot saved into its handlers/, and a person talking to it in the emulator.

The time from the save to the bot's answer is printed (run with -s to see it) and must stay under 3 s.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
PRIYA, JORDAN = "100071234567892", "100071234567894"  # a person, and the seeded Administrator
TEN_LINES = '''from bots import Bot, Context, Message, Postback

bot = Bot("mybot", description="said hello in ten lines")


@bot.on_postback("GET_STARTED")
def hello(event: Postback, ctx: Context) -> None:
    ctx.reply("Hi! Say ping.")


@bot.on_message("ping")
def ping(event: Message, ctx: Context) -> None:
    ctx.reply("{answer}")
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DevRun:
    """scripts/dev.py running in a copy of the project, its output read line by line."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bot_port, self.emulator_port = free_port(), free_port()
        self.emulator = f"http://127.0.0.1:{self.emulator_port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DOTENV", None)
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "dev.py"), "--root", str(root), "--bot-port", str(self.bot_port),
             "--emulator-port", str(self.emulator_port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line)
            self.lines.put(line)

    def wait_for_line(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s:\n{''.join(self.log)}")

    def env(self) -> dict[str, str | None]:
        return dotenv_values(self.root / ".env")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevRun]:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("app.py", "gunicorn.conf.py"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "handlers", root / "handlers", ignore=shutil.ignore_patterns("__pycache__"))
    run = DevRun(root)
    try:
        run.wait_for_line("Ctrl-C stops both")
        yield run
    finally:
        run.stop()


class Person:
    """Someone in the local Workplace's Work Chat, over its HTTP API."""

    def __init__(self, emulator: str, person_id: str) -> None:
        self.emulator, self.id = emulator, person_id
        self.session = requests.Session()
        self.session.post(f"{emulator}/work/viewer", data={"person_id": person_id}, timeout=5)
        self.thread = ""

    def open(self, app_id: str) -> None:
        """Open the bot from the directory (a first visit sends its Get Started postback)."""
        answer = self.session.get(f"{self.emulator}/work/bots/{app_id}", timeout=5)
        assert answer.status_code == 200, answer.text
        self.thread = answer.url.rsplit("/", 1)[-1]

    def send(self, text: str) -> None:
        answer = self.session.post(f"{self.emulator}/work/api/threads/{self.thread}/messages", json={"text": text},
                                   timeout=5)
        assert answer.status_code == 200, answer.text

    def wait_for(self, text: str, timeout: float = 10) -> float:
        """When the bot's message ``text`` appeared in the chat (time.time())."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.session.get(f"{self.emulator}/work/api/threads/{self.thread}", timeout=5).json()["messages"]
            if any(m["sender"] != self.id and m["body"].get("text") == text for m in messages):
                return time.time()
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} from the bot within {timeout} s: {messages}")


def test_a_saved_bot_module_answers_a_person_within_3_s_and_survives_a_token_reset(dev):
    saved = time.time()
    (dev.root / "handlers" / "mybot.py").write_text(TEN_LINES.format(answer="pong"))
    dev.wait_for_line("mybot: webhooks saved (page)", timeout=10)
    app_id = dev.env()["MYBOT_APP_ID"]
    assert dev.env()["MYBOT_ACCESS_TOKEN"] and dev.env()["MYBOT_APP_SECRET"]

    priya = Person(dev.emulator, PRIYA)
    priya.open(app_id)
    priya.wait_for("Hi! Say ping.")  # the integration has Get Started, and the bot answers it
    priya.send("ping")
    answered = priya.wait_for("pong")
    live = next(line for line in dev.log if "mybot: live" in line).strip()
    print(f"\nonboarding: saved -> the bot answered a person in {answered - saved:.2f} s ({live})")
    assert answered - saved < 3

    old_token = dev.env()["MYBOT_ACCESS_TOKEN"]
    jordan = Person(dev.emulator, JORDAN)  # the Administrator: the Admin Panel's own reset button
    reset = jordan.session.post(f"{dev.emulator}/admin/integrations/{app_id}/token", timeout=5)
    assert reset.status_code == 200, reset.text
    deadline = time.monotonic() + 5
    while dev.env()["MYBOT_ACCESS_TOKEN"] == old_token and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dev.env()["MYBOT_ACCESS_TOKEN"] != old_token
    priya.send("ping")  # answered with the old token before the reload: it keeps working for a while in development
    assert _replies(priya, "pong", 2, timeout=10)
    dev.wait_for_line("reloaded: the bot server runs with the new .env")
    priya.send("ping")
    assert _replies(priya, "pong", 3, timeout=10)
    dev.stop()
    assert dev.process.returncode == 0, "asked to stop (SIGTERM), make run ends cleanly, not with the servers' signal"


def _replies(person: Person, text: str, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = person.session.get(f"{person.emulator}/work/api/threads/{person.thread}", timeout=5).json()
        if sum(m["sender"] != person.id and m["body"].get("text") == text for m in messages["messages"]) >= count:
            return True
        time.sleep(0.05)
    return False


def test_an_edited_module_is_served_without_a_restart_and_a_broken_one_stops_nothing(dev):
    (dev.root / "handlers" / "mybot.py").write_text(TEN_LINES.format(answer="pong"))
    dev.wait_for_line("mybot: live")
    (dev.root / "handlers" / "mybot.py").write_text(TEN_LINES.format(answer="pong, edited"))
    dev.wait_for_line("reloaded: the saved code is served")
    priya = Person(dev.emulator, PRIYA)
    priya.open(dev.env()["MYBOT_APP_ID"] or "")
    priya.send("ping")
    priya.wait_for("pong, edited")
    assert sum("integration created" in line and "mybot" in line for line in dev.log) == 1


    (dev.root / "handlers" / "halfway.py").write_text("from bots import Bot\nbot = Bot('halfway'\n")
    dev.wait_for_line("reloaded: the saved code is served")
    served = [bot["name"] for bot in requests.get(f"http://127.0.0.1:{dev.bot_port}/", timeout=5).json()["bots"]]
    assert served == ["docs", "helpdesk", "mybot"]
    assert any("handlers.halfway: not served: importing it failed (SyntaxError" in line for line in dev.log)
    priya.send("ping")
    assert _replies(priya, "pong, edited", 2, timeout=10)


def test_a_bot_without_settings_does_not_stop_the_server_and_the_log_names_the_fix(tmp_path):
    env = {"PATH": os.environ["PATH"], "DOTENV": "0", "DATA_DIR": str(tmp_path), "MISSING_SETTINGS": "skip",
           "HELPDESK_APP_SECRET": "helpdesk-secret-01", "HELPDESK_ACCESS_TOKEN": "helpdesk-token-01",
           "HELPDESK_VERIFY_TOKEN": "helpdesk-verify-01"}
    port = free_port()
    process = subprocess.Popen([str(GUNICORN), "app:app", "--bind", f"127.0.0.1:{port}", "--workers", "1"], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        served = _index(f"http://127.0.0.1:{port}/", process)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0]
    assert served == ["helpdesk"], output
    assert "docs: not served: DOCS_APP_SECRET: is not set" in output
    assert "Fix: `flask bots provision docs`" in output


def _index(url: str, process: subprocess.Popen, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return [bot["name"] for bot in requests.get(url, timeout=2).json()["bots"]]
        except requests.RequestException:
            time.sleep(0.1)
    return []


def test_when_the_bot_server_stops_the_local_workplace_stays_up_and_the_next_save_starts_it(dev):
    env_file = dev.root / ".env"
    good = env_file.read_text()
    env_file.write_text(good + "WEBHOOK_MAX_BYTES=lots\n")
    dev.wait_for_line("the bot server stopped (exit")
    assert any("WEBHOOK_MAX_BYTES: is malformed" in line for line in dev.log)
    assert requests.get(f"{dev.emulator}/work/", timeout=5).status_code in (200, 302)
    env_file.write_text(good)
    dev.wait_for_line("reloaded: the bot server runs with the new .env")
    served = [bot["name"] for bot in requests.get(f"http://127.0.0.1:{dev.bot_port}/", timeout=5).json()["bots"]]
    assert served == ["docs", "helpdesk"]

"""Log lines an operator can keep: escaped, redacted, and one JSON object per line with LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from bots import logs
from bots.deliveries import Deliveries
from bots.signature import sign
from tests.e2e.test_gunicorn import CREDENTIALS, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
FORGED = "2026-01-01 00:00:00,000 ERROR bots: forged"
MESSAGE_TEXT = "my salary is 123456, please keep it quiet"


def record(message: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.LogRecord("bots", logging.WARNING, __file__, 1, message, args, exc_info)
    made.__dict__.update(extra)
    return made


def test_escape_writes_control_characters_as_escapes():
    assert logs.escape("a\nb\r\tc\x1b[31m\u2028") == "a\\nb\\r\\tc\\x1b[31m\\u2028"
    assert logs.escape("plain") == "plain"


def test_every_query_value_but_hub_mode_is_redacted():
    uri = "/webhooks/helpdesk?hub.mode=subscribe&hub.verify_token=s3cret&hub.challenge=42&flag"
    assert logs.redact_uri(uri) == ("/webhooks/helpdesk?hub.mode=subscribe&hub.verify_token=[redacted]"
                                    "&hub.challenge=[redacted]&flag")


def test_a_value_from_the_request_cannot_start_a_line_of_its_own_in_text():
    line = logs.TextFormatter().format(record("%s: refused", f"x\n{FORGED}"))
    assert "\n" not in line and line.endswith(f"x\\n{FORGED}: refused")


def test_a_traceback_keeps_its_lines_but_each_is_marked_as_part_of_the_record():
    try:
        raise ValueError(f"bad\n{FORGED}")
    except ValueError:
        line = logs.TextFormatter().format(record("failed", exc_info=sys.exc_info()))
    assert all(part.startswith("  | ") for part in line.splitlines()[1:])
    assert not any(part.startswith(FORGED) for part in line.splitlines())


def test_json_lines_carry_the_event_fields_and_the_exception_as_one_string():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        made = record("%s: handled", "demo", exc_info=sys.exc_info(), bot="demo", event="page/messages",
                      delivery="m_1", outcome="failed", duration_ms=1.5)
    line = logs.JSONFormatter().format(made)
    assert "\n" not in line
    parsed = json.loads(line)
    assert {key: parsed[key] for key in ("level", "logger", "message", "bot", "event", "delivery", "outcome",
                                         "duration_ms")} == {
        "level": "WARNING", "logger": "bots", "message": "demo: handled", "bot": "demo", "event": "page/messages",
        "delivery": "m_1", "outcome": "failed", "duration_ms": 1.5}
    assert parsed["time"].endswith("Z") and "RuntimeError: boom" in parsed["exception"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_under_gunicorn_no_line_holds_a_secret_or_message_text_and_none_is_forged(tmp_path, log_format):
    port = free_port()
    env = {"PATH": os.environ["PATH"], "DOTENV": "0", "DATA_DIR": str(tmp_path), "LOG_FORMAT": log_format,
           "GRAPH_API_URL": f"http://127.0.0.1:{free_port()}", "GRAPH_RETRY_ATTEMPTS": "1", **CREDENTIALS}
    server = subprocess.Popen([str(GUNICORN), "app:app", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                               "--threads", "4", "--worker-class", "gthread", "--access-logfile", "-",
                               "--no-control-socket"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/healthz", server)
        verify = CREDENTIALS["HELPDESK_VERIFY_TOKEN"]
        requests.get(f"{url}/webhooks/helpdesk", params={"hub.mode": "subscribe", "hub.verify_token": verify,
                                                         "hub.challenge": "7"}, timeout=5)
        requests.get(f"{url}/webhooks/x%0a{FORGED.replace(' ', '%20')}", timeout=5)
        body = json.dumps(Deliveries().message(MESSAGE_TEXT)).encode()
        answer = requests.post(f"{url}/webhooks/helpdesk", data=body, timeout=5, headers={
            "X-Hub-Signature-256": sign(body, CREDENTIALS["HELPDESK_APP_SECRET"])})
        assert answer.status_code == 200
        requests.post(f"{url}/webhooks/helpdesk", data=body, timeout=5, headers={"X-Hub-Signature-256": "sha256=0"})
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    lines = output.splitlines()
    assert any("/webhooks/helpdesk" in line for line in lines), output
    for secret in [*CREDENTIALS.values(), MESSAGE_TEXT]:
        assert secret not in output
    assert not any(line.startswith(FORGED) for line in lines)
    if log_format == "json":
        assert all(isinstance(json.loads(line), dict) for line in lines if line.strip()), output


def test_each_handler_run_is_one_line_naming_bot_kind_delivery_outcome_and_duration(bot, tester, caplog):
    @bot.on_message()
    def echo(event, ctx):
        ctx.reply("hi")

    with caplog.at_level(logging.INFO, logger="bots"):
        tester.message("a private message", mid="m_logged")
    [run] = [line for line in caplog.records if getattr(line, "delivery", None) == "mid:m_logged"]
    assert (run.bot, run.event, run.outcome) == ("demo", "page/messages", "handled")
    assert run.duration_ms >= 0
    assert "a private message" not in caplog.text


@pytest.mark.parametrize("hops, logged", [("1", "203.0.113.7"), ("0", "127.0.0.1")])
def test_behind_a_proxy_refusals_name_the_client_only_when_its_hops_are_trusted(served, caplog, hops, logged):
    server = served(PROXY_HOPS=hops)
    with caplog.at_level(logging.WARNING, logger="bots"):
        server.client.post("/webhooks/demo", data=b"{}", headers={"X-Hub-Signature-256": "sha256=00",
                                                                   "X-Forwarded-For": "203.0.113.7"})
    assert f"refused a delivery from {logged}" in caplog.text

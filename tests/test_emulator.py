"""The emulator's Graph API checks tokens and proofs as Workplace does, and records what bots send."""

from __future__ import annotations

import pytest

from bots.errors import GraphError
from bots.graph import GraphClient
from emulator import create_app

SETTINGS = {"HELPDESK_APP_SECRET": "0123456789abcdef", "HELPDESK_ACCESS_TOKEN": "helpdesk-token"}


@pytest.fixture
def emulator(serve):
    app = create_app(SETTINGS)
    app.url = serve(app)
    return app


def test_a_valid_call_is_recorded(emulator):
    graph = GraphClient(emulator.url, "helpdesk-token", "0123456789abcdef")
    answer = graph.post("me/messages", {"recipient": {"id": "1"}, "message": {"text": "hi"}})
    assert answer["message_id"].startswith("m_emu_")
    calls = emulator.extensions["emulator"].recorder.calls
    assert calls[-1]["integration"] == "helpdesk" and calls[-1]["body"]["message"] == {"text": "hi"}


def test_a_send_to_several_people_opens_a_thread(emulator):
    graph = GraphClient(emulator.url, "helpdesk-token", "0123456789abcdef")
    assert graph.post("me/messages", {"recipient": {"ids": ["1", "2"]}, "message": {"text": "hi"}})["thread_key"]


@pytest.mark.parametrize("token, secret, proof, code", [
    ("wrong-token", "0123456789abcdef", "timed", 190),
    ("helpdesk-token", "not-the-secret!!", "timed", 100),
    ("helpdesk-token", "0123456789abcdef", "off", 100),
])
def test_bad_token_or_proof_is_refused_with_a_graph_error(emulator, token, secret, proof, code):
    with pytest.raises(GraphError) as caught:
        GraphClient(emulator.url, token, secret, proof=proof).post("me/messages", {"recipient": {"id": "1"},
                                                                                    "message": {"text": "x"}})
    assert caught.value.code == code
    assert emulator.extensions["emulator"].recorder.calls == []


def test_a_stale_proof_time_is_refused(emulator):
    integration = emulator.extensions["emulator"].integrations.by_name("helpdesk")
    assert "5 minutes" in integration.proof_error({"appsecret_proof": "x", "appsecret_time": "1000"})


def test_a_message_without_recipient_is_refused(emulator):
    with pytest.raises(GraphError) as caught:
        GraphClient(emulator.url, "helpdesk-token", "0123456789abcdef").post("me/messages", {"message": {"text": "x"}})
    assert caught.value.code == 100

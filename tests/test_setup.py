"""`flask bots setup` end to end: a loopback Workplace verifies the callback, as the real one does."""

from __future__ import annotations

import pytest
import requests
from flask import Flask, jsonify, request

from app import create_app
from bots.testing import settings_for
from handlers.helpdesk import bot as helpdesk

SETTINGS = {**settings_for(helpdesk), "HELPDESK_APP_ID": "424242", "BOTS": "helpdesk"}


@pytest.fixture
def workplace(serve):
    """Records profile and subscription calls; on a subscription, performs the GET handshake first."""
    app = Flask("workplace")
    app.profiles, app.subscriptions = [], []

    @app.post("/me/messenger_profile")
    def profile():
        if request.headers["Authorization"] != f"Bearer {SETTINGS['HELPDESK_ACCESS_TOKEN']}":
            return jsonify({"error": {"message": "Invalid OAuth access token.", "code": 190}}), 401
        app.profiles.append(request.get_json())
        return jsonify({"result": "success"})

    @app.post("/app/subscriptions")
    def subscribe():
        if request.headers["Authorization"] != f"Bearer 424242|{SETTINGS['HELPDESK_APP_SECRET']}":
            return jsonify({"error": {"message": "An app access token is required", "code": 15}}), 400
        body = request.get_json()
        answer = requests.get(body["callback_url"], timeout=5, params={
            "hub.mode": "subscribe", "hub.verify_token": body["verify_token"], "hub.challenge": "8472"})
        if answer.text != "8472":
            return jsonify({"error": {"message": "Callback verification failed", "code": 2200}}), 400
        app.subscriptions.append(body)
        return jsonify({"success": True})

    app.url = serve(app)
    return app


def test_setup_pushes_the_profile_and_subscribes_what_the_handlers_need(workplace, serve, tmp_path):
    bots = create_app({"DOTENV": False, "ENVIRON": {}, "GRAPH_API_URL": workplace.url, "DATA_DIR": str(tmp_path),
                       "GRAPH_RETRY_ATTEMPTS": "1", **SETTINGS})
    callback = serve(bots)
    result = bots.test_cli_runner().invoke(args=["bots", "setup", "helpdesk", "--callback-url", callback])
    assert result.exit_code == 0, result.output

    profile = workplace.profiles[0]
    assert profile["get_started"] == {"payload": "GET_STARTED"}
    assert profile["greeting"][0]["text"].startswith("Hi {{user_first_name}}!")
    assert [item["title"] for item in profile["persistent_menu"][0]["call_to_actions"]] == [
        "Help menu", "Talk to a human", "IT status page"]

    assert [(s["object"], s["fields"], s["callback_url"]) for s in workplace.subscriptions] == [
        ("group", "comments", f"{callback}/webhooks/helpdesk/group"),
        ("page", "mention,messages,messaging_postbacks", f"{callback}/webhooks/helpdesk/page"),
    ]
    assert "subscribed page (mention,messages,messaging_postbacks)" in result.output
    assert SETTINGS["HELPDESK_APP_SECRET"] not in result.output
    assert SETTINGS["HELPDESK_VERIFY_TOKEN"] not in result.output


def test_setup_fails_with_the_reason_when_the_callback_does_not_verify(workplace, serve, tmp_path):
    bots = create_app({"DOTENV": False, "ENVIRON": {}, "GRAPH_API_URL": workplace.url, "DATA_DIR": str(tmp_path),
                       "GRAPH_RETRY_ATTEMPTS": "1", **SETTINGS})
    elsewhere = serve(Flask("not-the-bot-server"))
    result = bots.test_cli_runner().invoke(args=["bots", "setup", "helpdesk", "--callback-url", elsewhere])
    assert result.exit_code != 0
    assert "Callback verification failed" in result.output
    assert workplace.subscriptions == []


def test_setup_needs_the_app_id(tmp_path):
    settings = {k: v for k, v in SETTINGS.items() if k != "HELPDESK_APP_ID"}
    bots = create_app({"DOTENV": False, "ENVIRON": {}, "DATA_DIR": str(tmp_path), **settings})
    result = bots.test_cli_runner().invoke(args=["bots", "setup", "helpdesk", "--callback-url", "https://x.test"])
    assert result.exit_code != 0
    assert "HELPDESK_APP_ID: is needed to subscribe webhooks" in result.output


def test_setup_refuses_a_plain_http_callback(tmp_path):
    bots = create_app({"DOTENV": False, "ENVIRON": {}, "DATA_DIR": str(tmp_path), **SETTINGS})
    result = bots.test_cli_runner().invoke(args=["bots", "setup", "helpdesk", "--callback-url", "http://bots.test"])
    assert "must be https://" in result.output

"""Fixtures for the emulator's tests: the emulator and a bot's callback server, both on loopback."""

from __future__ import annotations

import json
import threading
import time

import pytest
from emulator_helpers import SETTINGS, VERIFY
from flask import Flask, request

from emulator import create_app


@pytest.fixture
def callback(serve):
    """A bot's webhook endpoint: answers the handshake for VERIFY, records deliveries, answers ``app.status``
    (a list is consumed one status per delivery) with ``app.answer`` as the body."""
    app = Flask("callback")
    app.deliveries = []
    app.status = 200
    app.answer = {}
    app.arrived = threading.Event()
    app.delay = 0.0

    @app.route("/webhooks/<bot>", methods=["GET", "POST"])
    def hook(bot):
        if request.method == "GET":
            if request.args.get("hub.verify_token") == VERIFY:
                return request.args["hub.challenge"]
            return "wrong token", 403
        app.deliveries.append({"headers": dict(request.headers), "raw": request.get_data(),
                               "body": json.loads(request.get_data())})
        app.arrived.set()
        time.sleep(app.delay)
        status = app.status.pop(0) if isinstance(app.status, list) else app.status
        return app.answer, status

    app.url = serve(app)
    return app


@pytest.fixture
def emulator(serve, callback):
    """The emulator seeded with the example bots, their webhooks pointing at ``callback``."""
    app = create_app({**SETTINGS, "EMULATOR_BOT_URL": callback.url})
    app.url = serve(app)
    app.state = app.extensions["emulator"]
    yield app
    app.state.close()

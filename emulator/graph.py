"""The Graph API subset bots call to answer: ``/me/messages`` and ``/{id}/comments``.

Each call is checked as Workplace checks it (Bearer token, appsecret_proof), refused with a
Graph-shaped error, and recorded so a person (the console) or a test (``GET /_emulator/calls``)
can see what the bot said.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

from flask import Blueprint, current_app, jsonify, request

logger = logging.getLogger("emulator")


class Recorder:
    """Every accepted call, in order, with ids handed out like Graph's."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, integration: str, method: str, path: str, body: Any) -> int:
        with self._lock:
            n = next(self._ids)
            self.calls.append({"n": n, "integration": integration, "method": method, "path": path, "body": body})
            return n


def blueprint() -> Blueprint:
    bp = Blueprint("graph", __name__)
    bp.add_url_rule("/me/messages", view_func=_messages, methods=["POST"])
    bp.add_url_rule("/<version>/me/messages", view_func=_messages, methods=["POST"])
    bp.add_url_rule("/<object_id>/comments", view_func=_comments, methods=["POST"])
    bp.add_url_rule("/_emulator/calls", view_func=_calls, methods=["GET"])
    return bp


def graph_error(message: str, code: int, status: int = 400, type: str = "OAuthException"):
    """A response shaped like a Graph API error."""
    response = jsonify({"error": {"message": message, "type": type, "code": code, "fbtrace_id": "Aemulator"}})
    response.status_code = status
    return response


def _caller():
    """The integration making the call, or the Graph error refusing it."""
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else request.args.get("access_token")
    integration = current_app.extensions["emulator"].integrations.get(token or "")
    if integration is None:
        return None, graph_error("Invalid OAuth access token.", 190, 401)
    problem = integration.proof_error(request.args)
    if problem:
        return None, graph_error(problem, 100)
    return integration, None


def _json_body():
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _messages(version: str | None = None):
    integration, refused = _caller()
    if refused:
        return refused
    body = _json_body()
    if body is None:
        return graph_error("The request body must be a JSON object.", 100)
    recipient = body.get("recipient")
    target = recipient.get("id") or recipient.get("thread_key") if isinstance(recipient, dict) else None
    if not isinstance(recipient, dict) or not (target or recipient.get("ids")):
        return graph_error("(#100) The parameter recipient is required", 100)
    if "message" not in body and "sender_action" not in body:
        return graph_error("(#100) Must send either message or sender_action", 100)
    n = _record(integration.name, "POST", "me/messages", body)
    _show_message(integration.name, recipient, body)
    answer = {"recipient_id": target or f"t_{n}", "message_id": f"m_emu_{n}"}
    if recipient.get("ids"):
        answer["thread_key"] = f"t_{n}"
    return jsonify(answer)


def _comments(object_id: str):
    integration, refused = _caller()
    if refused:
        return refused
    body = _json_body() or request.form.to_dict()
    if not body.get("message"):
        return graph_error("(#100) The parameter message is required", 100)
    n = _record(integration.name, "POST", f"{object_id}/comments", body)
    logger.info("[feed] %s commented on %s: %s", integration.name, object_id, body["message"])
    return jsonify({"id": f"{object_id}_{n}"})


def _calls():
    return jsonify({"calls": current_app.extensions["emulator"].recorder.calls})


def _record(integration: str, method: str, path: str, body: Any) -> int:
    return current_app.extensions["emulator"].recorder.record(integration, method, path, body)


def _show_message(integration: str, recipient: dict, body: dict) -> None:
    to = recipient.get("thread_key") or recipient.get("id") or ",".join(recipient.get("ids", []))
    if "sender_action" in body:
        logger.info("[chat] %s -> %s: (%s)", integration, to, body["sender_action"])
        return
    message = body.get("message") or {}
    buttons = " ".join(f"[{q.get('title')}]" for q in message.get("quick_replies", []))
    logger.info("[chat] %s -> %s: %s %s", integration, to, message.get("text", "(attachment)"), buttons)

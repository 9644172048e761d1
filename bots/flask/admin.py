"""The admin JSON API: what the Admin Panel would show, for operators and dashboards.

Every route needs ``Authorization: Bearer <ADMIN_TOKEN>``; without ``ADMIN_TOKEN`` set the
API is off and answers 404, so a forgotten setting never leaves it open.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from ..deployment import Deployment
from ..errors import WebhookError
from ..signature import tokens_equal


def blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/admin/api")
    bp.before_request(_authorise)
    bp.add_url_rule("/stats", view_func=_all_stats)
    bp.add_url_rule("/stats/<bot>", view_func=_bot_stats)
    bp.add_url_rule("/deadletters", view_func=_dead_letters)
    bp.add_url_rule("/deadletters/replay", view_func=_replay_all, methods=["POST"])
    bp.add_url_rule("/deadletters/<letter_id>/replay", view_func=_replay_one, methods=["POST"])
    return bp


def _authorise() -> Response | None:
    expected = current_app.extensions["bots"].settings.admin_token
    if expected is None:
        return _error(WebhookError(404, "the admin API is off: set ADMIN_TOKEN to turn it on"))
    header = request.headers.get("Authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
    if not tokens_equal(given, expected):
        response = _error(WebhookError(401, "send Authorization: Bearer <ADMIN_TOKEN>", "Authorization"))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return None


def _all_stats() -> Response:
    deployment: Deployment = current_app.extensions["bots"]
    return jsonify({"bots": [deployment.stats.summary(name) for name in deployment.runtimes]})


def _bot_stats(bot: str) -> Response:
    deployment: Deployment = current_app.extensions["bots"]
    if bot not in deployment.runtimes:
        return _error(WebhookError(404, f"no bot named {bot!r} is served here", "bot"))
    return jsonify(deployment.stats.summary(bot))


def _dead_letters() -> Response:
    inbox = current_app.extensions["bots"].inbox
    letters = inbox.dead_letters()
    return jsonify({"dead_letters": letters, "count": len(letters), "pending": inbox.pending})


def _replay_all() -> Response:
    return jsonify({"replayed": current_app.extensions["bots"].inbox.replay(None)})


def _replay_one(letter_id: str) -> Response:
    try:
        count = current_app.extensions["bots"].inbox.replay(letter_id)
    except (ValueError, LookupError) as error:
        return _error(WebhookError(400, str(error), "id"))
    if not count:
        return _error(WebhookError(404, f"no dead letter {letter_id!r}", "id"))
    return jsonify({"replayed": count})


def _error(error: WebhookError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    return response

"""``GET /metrics``: the Prometheus text format, behind ``Authorization: Bearer <METRICS_TOKEN>`` when it is set.

Without ``METRICS_TOKEN`` the route is open, as Prometheus endpoints usually are on a private network;
with it, a scrape without the token (compared in constant time) gets 401 and a JSON error.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from .. import metrics
from ..errors import WebhookError
from ..signature import tokens_equal


def blueprint() -> Blueprint:
    bp = Blueprint("metrics", __name__)
    bp.add_url_rule("/metrics", view_func=_metrics)
    return bp


def _metrics() -> Response:
    deployment = current_app.extensions["bots"]
    expected = deployment.settings.metrics_token
    if expected is not None and not tokens_equal(_bearer(request.headers.get("Authorization", "")), expected):
        return _unauthorised()
    body, content_type = metrics.exposition(deployment.inbox)
    return Response(body, content_type=content_type)


def _bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None for any other header."""
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None


def _unauthorised() -> Response:
    response = jsonify(WebhookError(401, "send Authorization: Bearer <METRICS_TOKEN>", "Authorization").to_dict())
    response.status_code = 401
    response.headers["WWW-Authenticate"] = "Bearer"
    return response

"""The Flask blueprint for webhook URLs: it only translates between Flask and :class:`Receiver`.

``/webhooks/<bot>`` takes every topic; ``/webhooks/<bot>/<topic>`` one topic, as Workplace allows
a callback URL per topic. GET is the subscription handshake, POST a delivery.
"""

from __future__ import annotations

import json

from flask import Blueprint, Request, Response, current_app, request
from werkzeug.exceptions import HTTPException

from .. import metrics
from ..receiver import Receiver, Reply

#: One compact encoder for every answer: ``json.dumps`` with separators builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def blueprint(url_prefix: str = "/webhooks") -> Blueprint:
    """The webhook routes under ``url_prefix``; the app's :class:`Receiver` is found in ``app.extensions["bots"]``."""
    bp = Blueprint("webhooks", __name__, url_prefix=url_prefix)
    bp.add_url_rule("/<bot>", view_func=_webhook, methods=["GET", "POST"], defaults={"topic": None})
    bp.add_url_rule("/<bot>/<topic>", view_func=_webhook, methods=["GET", "POST"])
    return bp


def _webhook(bot: str, topic: str | None) -> Response:
    receiver: Receiver = current_app.extensions["bots"].receiver
    # One proxy lookup instead of one per attribute. Flask types ``request`` as the Request it stands for, so the
    # proxy's own method is unknown to mypy.
    incoming: Request = request._get_current_object()  # type: ignore[attr-defined]
    if incoming.method == "GET":
        return _response(receiver.handshake(bot, topic, incoming.args))
    incoming.max_content_length = receiver.max_body_bytes  # WEBHOOK_MAX_BYTES here, whatever the app allows elsewhere
    known = bot if bot in receiver.runtimes else metrics.UNKNOWN
    try:
        body = incoming.get_data(cache=False)
    except HTTPException as refused:  # 413 over WEBHOOK_MAX_BYTES, 400 for a body cut short: counted, then answered
        metrics.delivered(known, refused.code or 400)
        raise
    reply = receiver.deliver(bot, topic, body, incoming.headers, incoming.remote_addr)
    metrics.delivered(known, reply.status)
    return _response(reply)


def _response(reply: Reply) -> Response:
    if isinstance(reply.body, str):
        return Response(reply.body, status=reply.status, mimetype="text/plain", headers=reply.headers)
    return Response(_encode(reply.body), status=reply.status,
                    mimetype="application/json", headers=reply.headers)

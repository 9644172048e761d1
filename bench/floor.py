"""The floor: a bare Flask app with one POST endpoint that reads the body and answers 200 JSON.

Same Flask, same URL shape (``/webhooks/<bot>``) as the real app, and nothing else: no signature,
no parsing, no queue. Every ratio the benchmarks print is measured against this endpoint.
Served by gunicorn as ``bench.floor:app``.
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/webhooks/<bot>")
def webhook(bot: str):
    """Read the whole body (as a receiver must) and acknowledge it."""
    body = request.get_data(cache=False)
    return jsonify({"received": 1 if body else 0})

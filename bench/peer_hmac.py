"""A peer: the hand-written HMAC receiver a developer writes without the framework.

Checks ``X-Hub-Signature-256`` over the raw body in constant time, decodes the JSON and answers
200, and nothing else: no envelope schema, no split, no queue. The issue quotes such a receiver at
1.26x the bare endpoint; measuring it here shows what the harness makes of that figure.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from flask import Flask, jsonify, request

from bench.payloads import SECRET

app = Flask(__name__)
_KEY = SECRET.encode()


@app.post("/webhooks/<bot>")
def webhook(bot: str):
    """Verify the signature, decode the body, acknowledge."""
    body = request.get_data(cache=False)
    expected = "sha256=" + hmac.new(_KEY, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return jsonify({"error": {"message": "bad signature"}}), 403
    document = json.loads(body)
    return jsonify({"received": len(document.get("entry", ()))})

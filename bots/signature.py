"""HMAC checks in one place: webhook payload signatures and the Graph API's appsecret_proof.

Signatures are computed over the raw body bytes and compared in constant time; the algorithm is
chosen by which header is present (sha256 first), never by what the header claims.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from typing import Protocol

from .errors import WebhookError

SHA256_HEADER = "X-Hub-Signature-256"
SHA1_HEADER = "X-Hub-Signature"

_FORMATS = {
    SHA256_HEADER: ("sha256", re.compile(r"sha256=([0-9a-fA-F]{64})")),
    SHA1_HEADER: ("sha1", re.compile(r"sha1=([0-9a-fA-F]{40})")),
}


class Headers(Protocol):
    """What :func:`verify` reads of a request's headers: a ``Mapping[str, str]`` or Werkzeug's ``Headers``."""

    def get(self, key: str, /) -> str | None: ...


def sign(body: bytes, secret: str, algorithm: str = "sha256") -> str:
    """The header value Workplace sends for ``body``: ``sha256=<hex>`` or ``sha1=<hex>``."""
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    return f"{algorithm}={digest}"


def verify(body: bytes, headers: Headers, secrets: Iterable[str]) -> str:
    """Check the delivery's signature against each secret; return the algorithm used or raise 403."""
    name, presented = SHA256_HEADER, headers.get(SHA256_HEADER)
    if presented is None:
        name, presented = SHA1_HEADER, headers.get(SHA1_HEADER)
    if presented is None:
        raise WebhookError(403, f"missing signature: send {SHA256_HEADER} (or {SHA1_HEADER})", name)
    algorithm, pattern = _FORMATS[name]
    found = pattern.fullmatch(presented.strip())
    if found is None:
        raise WebhookError(403, f"malformed signature: expected {algorithm}=<hex digest>", name)
    given = bytes.fromhex(found.group(1))
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(hmac.digest(secret.encode(), body, algorithm), given)
    if not matched:
        raise WebhookError(403, "signature does not match the body: check the App Secret", name)
    return algorithm


def appsecret_proof(access_token: str, app_secret: str, at: int | None = None) -> dict[str, str]:
    """Query parameters proving the caller holds the App Secret.

    With ``at`` (unix seconds) this is Workplace's timed form, signing ``token|time``; with
    ``at=None`` it is the classic form, signing the token alone.
    """
    if at is None:
        message = access_token
        params = {}
    else:
        message = f"{access_token}|{at}"
        params = {"appsecret_time": str(at)}
    proof = hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {"appsecret_proof": proof, **params}


def timed_proof(access_token: str, app_secret: str) -> dict[str, str]:
    """The timed appsecret_proof for now."""
    return appsecret_proof(access_token, app_secret, int(time.time()))


def tokens_equal(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token (such as ``hub.verify_token``)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())

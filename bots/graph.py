"""The Graph API client a bot answers through: Bearer token, appsecret_proof, time-outs, typed errors.

One pooled ``requests.Session`` per bot. Errors are raised as :class:`GraphError`, which never
holds the access token or the proof.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import requests

from .errors import GraphError
from .signature import appsecret_proof, timed_proof

logger = logging.getLogger("bots.graph")

CONNECT_TIMEOUT = 3.05


class GraphClient:
    """Calls the Graph API (Workplace, Messenger, or the local emulator) as one integration."""

    def __init__(self, base_url: str, access_token: str, app_secret: str, *, proof: str = "timed",
                 timeout: float = 10.0, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.proof = proof
        self.timeout = (CONNECT_TIMEOUT, timeout)
        self._token = access_token
        self._secret = app_secret
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {access_token}"

    def __repr__(self) -> str:
        return f"<GraphClient {self.base_url}>"

    def post(self, path: str, body: dict | None = None) -> dict:
        """POST ``body`` as JSON to ``path`` (``me/messages``, ``123/comments``) and return the answer."""
        return self.request("POST", path, json=body or {})

    def get(self, path: str, **params: Any) -> dict:
        """GET ``path``; list values in ``params`` (``fields=[...]``) are joined with commas."""
        params = {k: ",".join(v) if isinstance(v, (list, tuple)) else v for k, v in params.items()}
        return self.request("GET", path, params=params)

    def delete(self, path: str, body: dict | None = None) -> dict:
        """DELETE ``path``, with an optional JSON body (``participants`` takes one)."""
        return self.request("DELETE", path, json=body)

    def request(self, method: str, path: str, *, json: dict | None = None, params: dict | None = None) -> dict:
        """One call; raises :class:`GraphError` on a Graph error, a non-JSON answer or no answer."""
        url = f"{self.base_url}/{quote(path.lstrip('/'), safe='/:,|')}"
        query = dict(params or {})
        query.update(self._proof())
        try:
            response = self.session.request(method, url, params=query, json=json, timeout=self.timeout)
        except requests.RequestException as exc:
            raise GraphError(f"{method} /{path.lstrip('/')}: no answer ({type(exc).__name__})") from None
        return _answer(method, path, response)

    def _proof(self) -> dict[str, str]:
        if self.proof == "off":
            return {}
        if self.proof == "classic":
            return appsecret_proof(self._token, self._secret)
        return timed_proof(self._token, self._secret)


def _answer(method: str, path: str, response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.ok and isinstance(data, dict) and "error" not in data:
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        raise GraphError(f"{method} /{path.lstrip('/')}: HTTP {response.status_code} without a Graph answer",
                         status=response.status_code)
    return _raise(error, response.status_code)


def _raise(error: dict, status: int) -> dict:
    def number(key: str) -> int | None:
        value = error.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    raise GraphError(str(error.get("message") or "Graph API error"), code=number("code"),
                     subcode=number("error_subcode"), type=error.get("type"),
                     fbtrace_id=error.get("fbtrace_id"), status=status)

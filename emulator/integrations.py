"""The integrations the emulator knows: credentials read from the same settings the bots use."""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bots.signature import appsecret_proof

PROOF_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Integration:
    """One custom integration: its name, App Secret and access token."""

    name: str
    app_secret: str
    access_token: str
    require_proof: bool = True

    def proof_error(self, params: Mapping[str, str], now: float | None = None) -> str | None:
        """Why the call's appsecret_proof is refused, or None when it is valid (or not required)."""
        proof = params.get("appsecret_proof")
        if proof is None:
            return "appsecret_proof is required for this integration" if self.require_proof else None
        at = params.get("appsecret_time")
        if at is not None:
            if not at.isdigit():
                return "appsecret_time must be unix seconds"
            if abs(int(at) - (now or time.time())) > PROOF_WINDOW_SECONDS:
                return "appsecret_time is more than 5 minutes off"
        expected = appsecret_proof(self.access_token, self.app_secret, int(at) if at is not None else None)
        if not hmac.compare_digest(expected["appsecret_proof"].encode(), proof.encode()):
            return "appsecret_proof does not match"
        return None


def from_settings(env: Mapping[str, str]) -> dict[str, Integration]:
    """Integrations for every ``<BOT>_ACCESS_TOKEN`` with its ``<BOT>_APP_SECRET``, by access token."""
    found = {}
    for key, token in env.items():
        if key.endswith("_ACCESS_TOKEN") and token:
            prefix = key.removesuffix("_ACCESS_TOKEN")
            secret = env.get(f"{prefix}_APP_SECRET")
            if secret:
                found[token] = Integration(prefix.lower(), secret, token)
    return found

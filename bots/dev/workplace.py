"""The client of the local Workplace's provisioning API (:mod:`emulator.provision`): create a bot's integration
from its manifest, then save its webhooks once the bot server serves it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import requests

from .envfile import Credentials


class ProvisionError(Exception):
    """The local Workplace refused or could not be reached; the message says why."""


@dataclass(frozen=True)
class LocalWorkplace:
    """The emulator at ``url``, called with its dev token (``EMULATOR_DEV_TOKEN``)."""

    url: str
    token: str
    timeout: float = 10.0

    def provision(self, described: dict[str, Any], verify_token: str | None = None, update: bool = True
                  ) -> tuple[Credentials, bool]:
        """Create the integration of a bot ``described`` by :func:`bots.dev.catalog.describe`, or (``update``) bring
        an existing one in line with it; its credentials, with ``verify_token`` (a fresh one when None) for the
        webhooks, and whether it was created."""
        answer = self._post("/admin/api/dev/integrations", {"manifest": described["manifest"],
                                                            "profile": described["profile"], "update": update})
        credentials = Credentials(answer["name"], str(answer["app_id"]), answer["app_secret"], answer["access_token"],
                                  verify_token or secrets.token_urlsafe(16))
        return credentials, bool(answer["created"])

    def save_webhooks(self, described: dict[str, Any], verify_token: str) -> list[str]:
        """Save the bot's webhooks (the emulator runs each handshake first); the topics saved."""
        answer = self._post(f"/admin/api/dev/integrations/{described['name']}/webhooks",
                            {"verify_token": verify_token, "webhooks": described["manifest"]["webhooks"]})
        saved: list[str] = answer["saved"]
        return saved

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = requests.post(f"{self.url.rstrip('/')}{path}", json=body, timeout=self.timeout,
                                     headers={"Authorization": f"Bearer {self.token}"})
        except requests.RequestException as error:
            raise ProvisionError(f"the local Workplace at {self.url} is not reachable ({type(error).__name__}): "
                                 "is `make run` running?") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        if response.status_code != 200 and isinstance(answer.get("error"), dict):  # a Graph error: no such path
            raise ProvisionError(f"{self.url} has no provisioning API: start the emulator with EMULATOR_DEV_TOKEN "
                                 "set (`make run` does)")
        if response.status_code != 200:
            detail = answer.get("errors") or answer.get("error")
            raise ProvisionError(f"the local Workplace refused ({response.status_code}): {detail or response.text}")
        return answer

"""The development-only provisioning API, so ``make run`` serves a new bot with no hand editing.

``POST /admin/api/dev/integrations`` takes a bot's manifest (``bots manifest --json``, one integration) and its
Messenger profile, creates the integration or brings an existing one of that name in line (permissions,
visibility, link-preview domains, profile; its credentials are kept; ``"update": false`` leaves an existing one
as it is), and answers its credentials.
``POST /admin/api/dev/integrations/<name>/webhooks`` saves its webhooks as the Admin Panel's Save does: each
topic only after the GET handshake against the bot server succeeds; topics no longer wanted are removed.

Off unless ``EMULATOR_DEV_TOKEN`` is set (``make run`` writes one into the dev .env); every call
carries it as ``Authorization: Bearer <token>``, compared in constant time. It is not the Admin Panel's
browser session: the dev runner is a program, not a person.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request

from . import manifests
from .calls import state as emulator
from .integrations import Integration

#: Where ``app.extensions`` keeps the :class:`DevSettings`.
EXTENSION = "emulator_dev"


@dataclass(frozen=True)
class DevSettings:
    """The dev-only settings: the provisioning API's token, and the .env the Admin Panel's resets update."""

    token: str | None = None
    env_file: Path | None = None

    @classmethod
    def parse(cls, env: Mapping[str, str]) -> DevSettings:
        """``EMULATOR_DEV_TOKEN`` and ``EMULATOR_DEV_ENV_FILE`` from ``env``; both unset means development is off."""
        path = (env.get("EMULATOR_DEV_ENV_FILE") or "").strip()
        return cls((env.get("EMULATOR_DEV_TOKEN") or "").strip() or None, Path(path) if path else None)


def register(app: Flask, env: Mapping[str, str]) -> None:
    """Keep the dev settings in ``app.extensions`` and serve the API when ``EMULATOR_DEV_TOKEN`` is set."""
    settings = DevSettings.parse(env)
    app.extensions[EXTENSION] = settings
    if settings.token:
        app.register_blueprint(blueprint(), url_prefix="/admin/api/dev")


def dev_settings(app: Flask) -> DevSettings:
    """The :class:`DevSettings` of ``app`` (all off when :func:`register` was not called)."""
    found = app.extensions.get(EXTENSION)
    return found if isinstance(found, DevSettings) else DevSettings()


def blueprint() -> Blueprint:
    """The API's two views, each behind the dev token."""
    bp = Blueprint("dev", __name__)
    bp.before_request(_authorize)
    bp.add_url_rule("/integrations", view_func=provision, methods=["POST"])
    bp.add_url_rule("/integrations/<name>/webhooks", view_func=save_webhooks, methods=["POST"])
    return bp


def _authorize() -> None:
    """Refuse a call without the dev token (401), compared in constant time."""
    expected = dev_settings(current_app).token or ""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(_refusal("give the emulator's EMULATOR_DEV_TOKEN as Authorization: Bearer <token>", 401))


def _body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says one is needed."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(_refusal("the body must be a JSON object"))
    return body


def _refusal(message: str, status: int = 400) -> Response:
    """A JSON error ``{"error": message}`` with ``status``."""
    response = jsonify({"error": message})
    response.status_code = status
    return response


def provision() -> Response:
    """Create or update the integration a manifest describes; answer its credentials."""
    body = _body()
    manifest, profile = body.get("manifest"), body.get("profile") or {}
    if not isinstance(manifest, dict) or not isinstance(manifest.get("name"), str) or not manifest["name"]:
        return _refusal("manifest.name is required: send one integration of `bots manifest --json`")
    if not isinstance(profile, dict):
        return _refusal("profile must be a messenger_profile object")
    state = emulator()
    existing = state.integrations.by_name(manifest["name"])
    if existing is None:
        integration = manifests.create(state, manifest, profile, list_chat_bots=True)
    else:
        wanted = manifests.settings_of(manifest, profile, list_chat_bots=True) if body.get("update", True) else None
        integration = manifests.refresh(state, existing, wanted)
    return jsonify({**_credentials(integration), "created": existing is None})


def _credentials(integration: Integration) -> dict[str, Any]:
    """What the bot server needs of the integration, as the Admin Panel shows it."""
    return {"name": integration.name, "app_id": integration.id, "app_secret": integration.app_secret,
            "access_token": integration.access_token, "page_id": integration.page_id}


def save_webhooks(name: str) -> Response:
    """Save each webhook of the body once its handshake succeeds; answer what was saved and why the rest was not."""
    state = emulator()
    integration = state.integrations.by_name(name)
    if integration is None:
        return _refusal(f"no integration named {name!r}: provision it first", 404)
    body = _body()
    token, hooks = body.get("verify_token"), body.get("webhooks")
    if not isinstance(token, str) or not token or not isinstance(hooks, list):
        return _refusal("give verify_token and webhooks (the manifest's list)")
    saved, problems = manifests.save_webhooks(state, integration, hooks, token)
    response = jsonify({"saved": saved, "errors": problems})
    response.status_code = 409 if problems else 200
    return response


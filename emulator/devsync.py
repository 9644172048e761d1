"""Development only: a token or App Secret reset in the Admin Panel reaches the dev .env, so the bot keeps talking.

Under ``make run`` the emulator is told where the dev .env is (``EMULATOR_DEV_ENV_FILE``); after a reset the
new value is written there, and the dev runner, which watches that file, reloads the bot server with it.
Without that setting (any other use of the emulator) nothing is written.
"""

from __future__ import annotations

from dotenv import dotenv_values, set_key
from flask import current_app

from .calls import state
from .provision import dev_settings


def credentials_reset(integration_id: str) -> None:
    """Write the integration's current access token and App Secret into the dev .env, when it serves that bot."""
    path = dev_settings(current_app).env_file
    integration = state().integrations.get(integration_id)
    if path is None or integration is None or not path.exists():
        return
    prefix = integration.name.upper()
    if f"{prefix}_ACCESS_TOKEN" not in dotenv_values(path):  # not a bot this .env serves
        return
    set_key(path, f"{prefix}_APP_SECRET", integration.app_secret, quote_mode="never")
    set_key(path, f"{prefix}_ACCESS_TOKEN", integration.access_token or "", quote_mode="never")

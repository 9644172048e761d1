"""The dev .env: written once with local credentials, then kept up to date by the dev runner and the emulator.

It is development's only: the bot server and the emulator both read it, ``make run`` never overwrites a value a
person set except a bot's credentials, which the local Workplace owns.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values, set_key

#: The settings a bot's credentials are kept in, by their suffix after ``<BOT>_``.
SUFFIXES = ("APP_ID", "APP_SECRET", "ACCESS_TOKEN", "VERIFY_TOKEN")
HEADER = "# Local development credentials written by `make run` (scripts/dev_env.py)."


@dataclass(frozen=True)
class Credentials:
    """One bot's settings as the local Workplace issued them."""

    name: str
    app_id: str
    app_secret: str
    access_token: str
    verify_token: str

    def as_settings(self) -> dict[str, str]:
        """``{"<BOT>_APP_ID": ..., ...}``: the lines of .env."""
        prefix = self.name.upper()
        values = (self.app_id, self.app_secret, self.access_token, self.verify_token)
        return {f"{prefix}_{suffix}": value for suffix, value in zip(SUFFIXES, values, strict=True)}

    def __repr__(self) -> str:
        return f"Credentials(name={self.name!r}, app_id={self.app_id!r}, secrets=<hidden>)"


def create(path: Path, bots: Iterable[str], graph_api_url: str = "http://127.0.0.1:8001") -> None:
    """Write a new .env with fresh local credentials for ``bots`` and the dev settings (mode 0600)."""
    lines = [HEADER, f"GRAPH_API_URL={graph_api_url}"]
    for bot in bots:
        prefix = bot.upper()
        lines += [f"{prefix}_APP_SECRET={secrets.token_hex(16)}", f"{prefix}_ACCESS_TOKEN={secrets.token_urlsafe(32)}",
                  f"{prefix}_VERIFY_TOKEN={secrets.token_urlsafe(12)}", f"{prefix}_APP_ID={secrets.randbelow(10**15)}"]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    ensure_dev_settings(path)


def ensure_dev_settings(path: Path) -> str:
    """Add what development needs to an existing .env when it lacks it: ``EMULATOR_DEV_TOKEN`` (the emulator's
    provisioning API) and ``MISSING_SETTINGS=skip`` (a bot without settings is skipped, not fatal); the token."""
    values = dotenv_values(path)
    token = values.get("EMULATOR_DEV_TOKEN") or secrets.token_urlsafe(24)
    if not values.get("EMULATOR_DEV_TOKEN"):
        set_key(path, "EMULATOR_DEV_TOKEN", token, quote_mode="never")
    if "MISSING_SETTINGS" not in values:
        set_key(path, "MISSING_SETTINGS", "skip", quote_mode="never")
    return token


def read(path: Path) -> dict[str, str]:
    """The values of .env (none when it does not exist), unset ones left out."""
    if not path.exists():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def has_credentials(path: Path, bot: str) -> bool:
    """Whether .env holds the app secret, access token and verify token of ``bot``."""
    values, prefix = read(path), bot.upper()
    return all(values.get(f"{prefix}_{suffix}") for suffix in ("APP_SECRET", "ACCESS_TOKEN", "VERIFY_TOKEN"))


def write_credentials(path: Path, credentials: Credentials) -> bool:
    """Put ``credentials`` into .env, replacing that bot's old ones; False when they were there already."""
    values = read(path)
    changed = {key: value for key, value in credentials.as_settings().items() if values.get(key) != value}
    for key, value in changed.items():
        set_key(path, key, value, quote_mode="never")
    return bool(changed)

"""Settings: one prefix per bot; a missing or malformed value stops start-up naming the variable."""

from __future__ import annotations

import pytest

from bots.config import bot_settings, selected_bots, server_settings
from bots.errors import ConfigError

GOOD = {"HELPDESK_APP_SECRET": "0123456789abcdef", "HELPDESK_ACCESS_TOKEN": "DQVJ-token-value",
        "HELPDESK_VERIFY_TOKEN": "verify-me"}


def test_reads_the_settings_of_a_bot_by_its_upper_cased_name():
    env = {**GOOD, "HELPDESK_APP_ID": "123", "HELPDESK_APP_SECRET_PREVIOUS": "oldsecret1"}
    settings = bot_settings("helpdesk", env)
    assert settings.app_id == "123"
    assert settings.secrets == ("0123456789abcdef", "oldsecret1")
    assert settings.appsecret_proof == "timed"


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_a_missing_required_setting_names_the_variable(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ConfigError) as caught:
        bot_settings("helpdesk", env)
    assert caught.value.variable == missing
    assert str(caught.value).startswith(f"{missing}: is not set")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("variable, value, words", [
    ("HELPDESK_APP_SECRET", "   ", "is empty"),
    ("HELPDESK_APP_SECRET", "short", "malformed"),
    ("HELPDESK_ACCESS_TOKEN", "has a space in it", "malformed"),
    ("HELPDESK_APP_ID", "12ab", "numeric App ID"),
    ("HELPDESK_APP_SECRET_PREVIOUS", "tiny", "malformed"),
    ("HELPDESK_APPSECRET_PROOF", "sometimes", "timed, classic, off"),
])
def test_a_malformed_setting_names_the_variable_and_never_echoes_a_secret(variable, value, words):
    with pytest.raises(ConfigError) as caught:
        bot_settings("helpdesk", {**GOOD, variable: value})
    assert caught.value.variable == variable
    assert words in str(caught.value)
    if variable.endswith(("_SECRET", "_TOKEN", "_PREVIOUS")) and value.strip():
        assert value.strip() not in str(caught.value)


def test_settings_repr_hides_the_secrets():
    text = repr(bot_settings("helpdesk", GOOD))
    assert all(value not in text for value in GOOD.values())


@pytest.mark.parametrize("variable, value", [
    ("GRAPH_API_URL", "graph.workplace.com"),
    ("GRAPH_API_URL", "ftp://graph.workplace.com"),
    ("GRAPH_API_URL", "https://graph.workplace.com/?x=1"),
    ("WEBHOOK_MAX_BYTES", "1MB"),
    ("WEBHOOK_MAX_BYTES", "0"),
    ("HANDLER_THREADS", "-1"),
    ("DEDUPE_TTL_SECONDS", "forever"),
    ("INBOX", "kafka"),
    ("INBOX", "celery"),
    ("REDIS_URL", "localhost:6379"),
    ("REDIS_URL", "http://localhost:6379"),
    ("INBOX_LEASE_SECONDS", "0"),
    ("INBOX_MAX_ATTEMPTS", "0"),
    ("OUTBOX_THREADS", "-1"),
])
def test_malformed_server_settings_name_the_variable(variable, value):
    with pytest.raises(ConfigError) as caught:
        server_settings({variable: value})
    assert caught.value.variable == variable


def test_server_settings_defaults_and_a_version_prefix():
    settings = server_settings({"GRAPH_API_URL": "http://127.0.0.1:8001/v18.0/"})
    assert settings.graph_api_url == "http://127.0.0.1:8001/v18.0"
    assert server_settings({}).graph_api_url == "https://graph.workplace.com"
    assert server_settings({}).max_body_bytes == 1024 * 1024
    assert server_settings({}).dedupe_ttl_seconds >= 36 * 3600


def test_the_inbox_is_sqlite_unless_redis_is_given_or_memory_is_asked_for():
    assert server_settings({}).inbox == "sqlite"
    assert server_settings({"REDIS_URL": "redis://127.0.0.1:6379/0"}).inbox == "celery"
    assert server_settings({"REDIS_URL": "redis://127.0.0.1:6379/0", "INBOX": "sqlite"}).inbox == "sqlite"
    assert server_settings({"INBOX": " Memory "}).inbox == "memory"


def test_a_malformed_redis_url_is_never_echoed_it_may_hold_a_password():
    with pytest.raises(ConfigError) as caught:
        server_settings({"REDIS_URL": "redis//:hunter2@host"})
    assert "hunter2" not in str(caught.value)


def test_bots_selection():
    assert selected_bots({}) is None
    assert selected_bots({"BOTS": " helpdesk , docs,"}) == ["helpdesk", "docs"]

"""The emulator's database: seeded when new, kept across restarts, re-synced with .env, reset on demand."""

from __future__ import annotations

import pytest
from emulator_helpers import DANA, SETTINGS, TOKEN

from emulator import create_app
from emulator.previews import Previews
from emulator.store import StaleDatabase


def test_a_new_database_is_seeded_with_people_groups_and_the_example_bots(tmp_path):
    state = create_app(SETTINGS, db=tmp_path / "e.sqlite3").extensions["emulator"]
    assert len(state.community.people()) == 6 and len(state.community.groups()) == 2
    helpdesk, docs = state.integrations.by_name("helpdesk"), state.integrations.by_name("docs")
    assert helpdesk.access_token == TOKEN and helpdesk.listed and helpdesk.profile["get_started"]
    assert docs.link_domains == ["docs.example.com"] and docs.has("Link previews")
    assert set(state.integrations.subscriptions(helpdesk.id)) == {"page", "group"}
    assert helpdesk.page_id in state.community.members("1500000000000001")


def test_a_restart_keeps_the_data_and_rereads_the_credentials(tmp_path):
    first = create_app(SETTINGS, db=tmp_path / "e.sqlite3").extensions["emulator"]
    thread, _ = first.community.direct_thread(DANA, first.integrations.by_name("helpdesk").page_id)
    first.store.close()
    again = create_app({**SETTINGS, "HELPDESK_ACCESS_TOKEN": "a-new-token-from-env"}, db=tmp_path / "e.sqlite3")
    state = again.extensions["emulator"]
    assert state.community.thread(thread["id"]) is not None
    assert state.integrations.by_name("helpdesk").access_token == "a-new-token-from-env"
    state.store.close()
    fresh = create_app(SETTINGS, db=tmp_path / "e.sqlite3", reset=True).extensions["emulator"]
    assert fresh.community.thread(thread["id"]) is None


def test_a_database_of_another_version_stops_start_up(tmp_path):
    state = create_app(SETTINGS, db=tmp_path / "e.sqlite3").extensions["emulator"]
    state.store.set_meta("schema_version", "0")
    state.store.close()
    with pytest.raises(StaleDatabase, match="RESET=1"):
        create_app(SETTINGS, db=tmp_path / "e.sqlite3")


def test_the_most_specific_link_domain_owns_a_link():
    state = create_app(SETTINGS).extensions["emulator"]
    wiki = state.integrations.create("wiki", permissions=["Link previews"], link_domains=["example.com"])
    previews = Previews(state.integrations, state.courier)
    assert previews.owner("https://docs.example.com/d/1").name == "docs"
    assert previews.owner("https://www.example.com/x").id == wiki.id
    assert previews.owner("https://example.org/x") is None

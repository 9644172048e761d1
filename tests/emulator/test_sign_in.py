"""Signing in: people have roles, picking who you are signs you in, and only an Administrator with
the permission to configure integrations opens the Admin Panel (pages and API alike)."""

from __future__ import annotations

import sqlite3

import pytest
import requests
from emulator_helpers import DANA, SETTINGS, person

from emulator import create_app
from emulator.community import ADMIN, EMPLOYEE
from emulator.seed import ADMINISTRATOR


def test_the_seed_has_one_administrator_and_employees(tmp_path):
    community = create_app(SETTINGS, db=tmp_path / "e.sqlite3").extensions["emulator"].community
    assert [p["id"] for p in community.with_role(ADMIN)] == [ADMINISTRATOR]
    assert len(community.with_role(EMPLOYEE)) == 5


def test_a_database_from_before_roles_is_migrated_and_keeps_its_data(tmp_path):
    path = tmp_path / "e.sqlite3"
    state = create_app(SETTINGS, db=path).extensions["emulator"]
    thread, _ = state.community.direct_thread(DANA, state.integrations.by_name("helpdesk").page_id)
    state.store.close()
    with sqlite3.connect(path) as db:  # what schema 1 wrote: people without a role
        db.execute("ALTER TABLE people DROP COLUMN role")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    again = create_app(SETTINGS, db=path).extensions["emulator"]
    assert again.store.meta("schema_version") == "2" and again.community.thread(thread["id"]) is not None
    assert [p["id"] for p in again.community.with_role(ADMIN)] == [ADMINISTRATOR]
    assert again.community.person(DANA)["role"] == EMPLOYEE

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
from emulator.store import SCHEMA_VERSION


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
    assert again.store.meta("schema_version") == SCHEMA_VERSION and again.community.thread(thread["id"]) is not None
    assert [p["id"] for p in again.community.with_role(ADMIN)] == [ADMINISTRATOR]
    assert again.community.person(DANA)["role"] == EMPLOYEE


@pytest.fixture
def helpdesk(emulator) -> str:
    return emulator.state.integrations.by_name("helpdesk").id


def test_an_employee_gets_a_403_page_and_nothing_is_saved(emulator, helpdesk):
    dana = person(emulator, DANA)
    for path in ("/admin/", f"/admin/integrations/{helpdesk}", f"/admin/integrations/{helpdesk}/live"):
        page = dana.get(f"{emulator.url}{path}")
        assert page.status_code == 403 and "Administrators only" in page.text and "Jordan Lee" in page.text
    refused = dana.post(f"{emulator.url}/admin/integrations/{helpdesk}/visibility", data={})
    assert refused.status_code == 403 and emulator.state.integrations.get(helpdesk).enabled


def test_an_employee_gets_a_json_403_from_the_api(emulator, helpdesk):
    dana = person(emulator, DANA)
    answer = dana.get(f"{emulator.url}/admin/integrations/{helpdesk}", headers={"Accept": "application/json"})
    assert answer.status_code == 403 and "configure integrations" in answer.json()["error"]["message"]
    posted = dana.post(f"{emulator.url}/admin/integrations/{helpdesk}/delete", json={"confirm": "helpdesk"})
    assert posted.status_code == 403 and posted.json()["error"]["type"] == "forbidden"
    assert emulator.state.integrations.get(helpdesk) is not None


def test_the_administrator_gets_through(emulator, helpdesk):
    jordan = person(emulator, ADMINISTRATOR)
    assert jordan.get(f"{emulator.url}/admin/").status_code == 200
    assert jordan.get(f"{emulator.url}/admin/integrations/{helpdesk}").status_code == 200


def test_an_anonymous_visitor_picks_who_they_are_and_comes_back(emulator, helpdesk):
    browser = requests.Session()
    path = f"/admin/integrations/{helpdesk}"
    sent = browser.get(f"{emulator.url}{path}", allow_redirects=False)
    assert sent.status_code == 302 and sent.headers["Location"] == f"/work/?next={path}"
    home = browser.get(f"{emulator.url}{sent.headers['Location']}").text
    assert f'name="next" value="{path}"' in home and "Pick who you are first" in home
    signed_in = browser.post(f"{emulator.url}/work/viewer", data={"person_id": ADMINISTRATOR, "next": path})
    assert signed_in.url == f"{emulator.url}{path}" and "<h2>Credentials</h2>" in signed_in.text
    api = requests.get(f"{emulator.url}/admin/", headers={"Accept": "application/json"})
    assert api.status_code == 401 and "error" in api.json()


def test_next_never_leads_to_another_site(emulator):
    answer = requests.post(f"{emulator.url}/work/viewer", data={"person_id": DANA, "next": "//evil.example/x"},
                           allow_redirects=False)
    assert answer.headers["Location"] == "/work/chat"


@pytest.mark.parametrize("who, name, role", [(ADMINISTRATOR, "Jordan Lee", "Administrator"),
                                             (DANA, "Dana Whitfield", "Employee")])
def test_the_header_shows_who_is_signed_in_and_their_role(emulator, who, name, role):
    page = person(emulator, who).get(f"{emulator.url}/work/chat").text
    assert f'<strong id="me-name">{name}</strong> <span class="role" id="me-role">{role}</span>' in page
    assert 'id="viewer-select"' in page and "Switch person" in page
    assert ('href="/admin/"' in page) == (role == "Administrator")

"""What the emulator's tests share besides fixtures: the seeded credentials and people, and a
person's browser-like session. (A module of its own, so no test imports ``conftest``.)"""

from __future__ import annotations

import requests

SECRET = "0123456789abcdef"
TOKEN = "helpdesk-token"
VERIFY = "verify-me"
SETTINGS = {"HELPDESK_APP_SECRET": SECRET, "HELPDESK_ACCESS_TOKEN": TOKEN, "HELPDESK_VERIFY_TOKEN": VERIFY,
            "DOCS_APP_SECRET": "docs-secret-0123", "DOCS_ACCESS_TOKEN": "docs-token-abcd",
            "EMULATOR_RETRY_DELAYS": "0.05,0.1"}
DANA, ALEX = "100071234567890", "100071234567893"
IT_HELP, PLANNING = "1500000000000001", "1500000000000002"


def person(emulator, person_id: str = DANA) -> requests.Session:
    """A browser-like session acting as ``person_id`` on the people's side."""
    session = requests.Session()
    session.post(f"{emulator.url}/work/viewer", data={"person_id": person_id}, allow_redirects=False)
    return session

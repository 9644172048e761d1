"""The seeded community: six people, two groups, and the example bots installed as integrations
with the credentials the bot server reads (``<BOT>_APP_SECRET``, ``<BOT>_ACCESS_TOKEN`` ...).

The bots' permissions, webhooks, link-preview domains and Messenger profile come from their
manifests (``bots.manifest``), so what is seeded is what ``flask bots manifest`` tells an admin
to enter.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .community import ADMIN, Community
from .integrations import PERMISSIONS, Integration, Integrations, Subscription
from .store import Store

logger = logging.getLogger("emulator")

#: (id, name, email, title); the docs bot's library names the first three as readers.
PEOPLE = [
    ("100071234567890", "Dana Whitfield", "dana@example.com", "Product lead"),
    ("100071234567891", "Sam Okafor", "sam@example.com", "Engineer"),
    ("100071234567892", "Priya Raman", "priya@example.com", "People partner"),
    ("100071234567893", "Alex Chen", "alex@example.com", "Designer"),
    ("100071234567894", "Jordan Lee", "jordan@example.com", "IT support"),
    ("100071234567895", "Maria Garcia", "maria@example.com", "Finance"),
]
#: Each person's department and manager (their id), as Graph's ``department`` and ``managers`` read them.
ORG = {
    "100071234567890": ("Product", "100071234567895"),
    "100071234567891": ("Engineering", "100071234567890"),
    "100071234567892": ("People", "100071234567895"),
    "100071234567893": ("Design", "100071234567890"),
    "100071234567894": ("IT", "100071234567891"),
    "100071234567895": ("Finance", None),
}
GROUPS = [
    ("1500000000000001", "IT Help", "Ask IT anything. Mention @helpdesk and it answers in the thread."),
    ("1500000000000002", "Product Planning", "Plans and documents. Share a docs.example.com link to see its preview."),
]
WELCOME = [
    ("1500000000000001", "100071234567894", "Welcome to IT Help! Mention @[{helpdesk}] in a post and the helpdesk bot "
                                            "answers in the comments."),
    ("1500000000000002", "100071234567890", "Q3 planning is here: https://docs.example.com/d/q3-plan "
                                            "(only Dana and Sam can read it)"),
]
#: The one Administrator (Jordan Lee, IT support), who may configure integrations; everyone else is an employee.
ADMINISTRATOR = "100071234567894"
#: Page ids of the example bots; the helpdesk's is the one ``bots.deliveries`` uses.
PAGE_IDS = {"helpdesk": "105678357661487", "docs": "105678357661488"}
DEFAULT_BOT_URL = "http://127.0.0.1:8000"


def seed(store: Store, env: Mapping[str, str], bot_url: str = DEFAULT_BOT_URL) -> None:
    """Fill a new database: people, groups, the bots with credentials in ``env``, a welcome post each."""
    community, integrations = Community(store), Integrations(store)
    for person in PEOPLE:
        community.add_person(*person)
    _fill_profiles(community)
    community.set_role(ADMINISTRATOR, ADMIN)
    pages = [i.page_id for i in install(integrations, env, bot_url)]
    for group_id, name, description in GROUPS:
        community.add_group(group_id, name, description, [p[0] for p in PEOPLE] + pages)
    for group_id, author, text in WELCOME:
        community.add_post(group_id, author, text.format(**PAGE_IDS))
    store.set_meta("seeded", "1")


def install(integrations: Integrations, env: Mapping[str, str], bot_url: str) -> list[Integration]:
    """An integration for every ``<BOT>_ACCESS_TOKEN`` with its ``<BOT>_APP_SECRET``; each one that may chat
    is listed in the bot directory, so a newcomer finds it there. With no credentials in ``env`` (the pytest
    plugin's Workplace) nothing is installed and ``handlers/`` is not imported."""
    if not any(key.endswith("_ACCESS_TOKEN") for key in env):
        return []
    manifests = _manifests(bot_url)
    made = []
    for key, token in sorted(env.items()):
        prefix = key.removesuffix("_ACCESS_TOKEN")
        secret = env.get(f"{prefix}_APP_SECRET")
        if not key.endswith("_ACCESS_TOKEN") or not token or not secret:
            continue
        name = prefix.lower()
        info = manifests.get(name, {})
        app_id = env.get(f"{prefix}_APP_ID", "").strip()
        permissions = info.get("permissions", list(PERMISSIONS))
        integration = integrations.create(
            name, info.get("description", ""), id=app_id if app_id.isdigit() else None, app_secret=secret,
            access_token=token, page_id=PAGE_IDS.get(name), permissions=permissions,
            discoverable="Message any member" in permissions,
            link_domains=info.get("link_preview_domains", []), profile=info.get("profile", {}),
            require_proof=env.get(f"{prefix}_APPSECRET_PROOF", "timed").lower() != "off")
        verify = env.get(f"{prefix}_VERIFY_TOKEN") or "verify-token"
        for hook in info.get("webhooks", []):
            integrations.subscribe(integration.id, Subscription(hook["topic"], f"{bot_url}/webhooks/{name}",
                                                                verify, hook["fields"]))
        made.append(integration)
    return made


def sync(store: Store, env: Mapping[str, str]) -> None:
    """Bring the example integrations' credentials in line with ``env`` (the bot server reads the same),
    so a regenerated .env keeps ``make run`` wired; other settings stay as the admin left them."""
    _keep_an_administrator(Community(store))
    _fill_profiles(Community(store))
    integrations = Integrations(store)
    for integration in integrations.all():
        prefix = integration.name.upper()
        token, secret = env.get(f"{prefix}_ACCESS_TOKEN"), env.get(f"{prefix}_APP_SECRET")
        if token and secret and (token, secret) != (integration.access_token, integration.app_secret):
            integrations.update(integration.id, access_token=token, app_secret=secret)
            logger.info("%s: credentials re-read from the environment (.env)", integration.name)


def _fill_profiles(community: Community) -> None:
    """Give the seeded people their department and manager (ORG) where they have none yet, so a database
    seeded before profiles existed answers ``managers`` too."""
    for person_id, (department, manager_id) in ORG.items():
        if community.person(person_id) and not community.profile(person_id)["department"]:
            community.set_profile(person_id, department, manager_id)


def _keep_an_administrator(community: Community) -> None:
    """Make the seeded administrator one again when nobody is (a database from before people had roles),
    so the Admin Panel stays reachable, and say so."""
    if community.with_role(ADMIN) or community.person(ADMINISTRATOR) is None:
        return
    community.set_role(ADMINISTRATOR, ADMIN)
    logger.info("people have roles now: %s is the Administrator (pick them to open the Admin Panel)",
                (community.person(ADMINISTRATOR) or {}).get("name", ADMINISTRATOR))


def _manifests(bot_url: str) -> dict[str, dict[str, Any]]:
    """What each example bot's manifest says, with its Messenger profile; {} when handlers/ cannot load."""
    try:
        from bots.discovery import find_bots
        from bots.manifest import manifest
        bots = find_bots("handlers")
    except Exception as error:  # a broken handler module must not stop the emulator
        logger.warning("could not read the bots in handlers/ (%s): seeding credentials only", error)
        return {}
    return {bot.name: {**manifest(bot, bot_url), "profile": bot.profile()} for bot in bots}

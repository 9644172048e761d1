"""The Admin Panel (``/admin``): integrations and every setting PROTOCOL.md section 9 lists.

Only an Administrator with the permission to configure integrations gets in: anyone else gets a
403 (a page, or a JSON error for a request that asks for JSON), and a visitor who has not picked
who they are is sent to do so first, then brought back.

Each section of an integration's page is one small form posting to its own URL; a bad value
comes back on the page again with everything typed kept and the wrong field marked (aria-invalid,
the reason beside it), and nothing is saved. Saving a webhook runs the GET
handshake against the callback first and refuses to save, with the reason, when it fails.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, session, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from . import devsync
from .calls import state
from .community import ADMIN, CONFIGURE_INTEGRATIONS, may
from .integrations import PERMISSIONS, TOPICS, Integration, Subscription, allow_list
from .logos import forget as forget_logos
from .people import viewer
from .webhooks import handshake

if TYPE_CHECKING:
    from .app import Emulator

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
MAX_NAME, MAX_DESCRIPTION = 80, 500
Refused = tuple[str, int]


@dataclass(frozen=True)
class Typed:
    """What was typed into one section's form that was not saved: the values, the wrong field and why."""

    section: str
    values: MultiDict[str, str]
    field: str
    message: str

    def value(self, section: str, name: str, default: object = "") -> object:
        """The typed value of ``name`` when this is ``section``'s form, else ``default`` (what is saved)."""
        return self.values.get(name, "") if section == self.section else default

    def chosen(self, section: str, name: str, value: str, default: bool) -> bool:
        """Whether the checkbox ``name``/``value`` was ticked when this is ``section``'s form, else ``default``."""
        return value in self.values.getlist(name) if section == self.section else default

    def wrong(self, section: str, name: str) -> bool:
        """Whether ``name`` in ``section`` is the field that was refused."""
        return (section, name) == (self.section, self.field)


#: The typed-nothing state a page starts in.
NOTHING = Typed("", MultiDict(), "", "")


def blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__)
    bp.before_request(_administrators_only)
    bp.add_url_rule("/", view_func=index, methods=["GET"])
    bp.add_url_rule("/integrations", view_func=create, methods=["POST"])
    bp.add_url_rule("/integrations/<integration_id>", view_func=details, methods=["GET"])
    bp.add_url_rule("/integrations/<integration_id>/live", view_func=live, methods=["GET"])
    for name, view in [("details", save_details), ("token", reset_token), ("secret", reset_secret),
                       ("visibility", save_visibility), ("permissions", save_permissions),
                       ("security", save_security), ("domains", save_domains), ("faults", save_faults),
                       ("groups", save_groups), ("delete", delete)]:
        bp.add_url_rule(f"/integrations/<integration_id>/{name}", view_func=view, methods=["POST"])
    bp.add_url_rule("/integrations/<integration_id>/webhooks/<topic>", view_func=save_webhook, methods=["POST"])
    bp.add_url_rule("/integrations/<integration_id>/webhooks/<topic>/delete", view_func=remove_webhook,
                    methods=["POST"])
    bp.add_app_template_filter(_timestamp, "timestamp")
    return bp


def _administrators_only() -> Response | tuple[str, int] | None:
    """Let an Administrator through; send a visitor who is nobody yet to pick who they are, refuse anyone else."""
    person = viewer()
    if may(person, CONFIGURE_INTEGRATIONS):
        return None
    if person is None and not _wants_json():
        back = request.full_path.rstrip("?") if request.method == "GET" else url_for("admin.index")
        return redirect(url_for("people.home", next=back))
    return _refusal(person)


def _wants_json() -> bool:
    """Whether the request is the API's (it asks for JSON or sends it) rather than a page's."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return request.is_json or best == "application/json"


def _refusal(person: dict[str, Any] | None) -> Response | tuple[str, int]:
    """The 403 that says who may open the Admin Panel and how to become them (JSON for the API)."""
    administrators = _emulator().community.with_role(ADMIN)
    who = person["name"] if person else "nobody"
    message = (f"The Admin Panel is for Administrators who may configure integrations; you are signed in as {who}. "
               f"Pick an Administrator ({', '.join(p['name'] for p in administrators) or 'none'}) on /work/.")
    if _wants_json():
        answer = jsonify({"error": {"message": message, "type": "forbidden"}})
        answer.status_code = 403 if person else 401
        return answer
    return render_template("forbidden.html", administrators=administrators, message=message), 403


def _timestamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _emulator() -> Emulator:
    return state()


def _integration(integration_id: str) -> Integration:
    integration = _emulator().integrations.get(integration_id)
    if integration is None:
        abort(404)
    return integration


def _audit(event: str, integration: Integration) -> None:
    """Tells the security-log subscribers that the admin (the browser's picked person) did ``event``."""
    _emulator().activity.admin_acted(event, session.get("viewer"), integration.id)


def _back(integration: Integration, section: str, message: str) -> Response:
    """Back to the integration's page at ``section`` after a save, with ``message`` beside it."""
    flash(message, f"ok:{section}")
    _emulator().previews.forget()
    return redirect(url_for("admin.details", integration_id=integration.id, _anchor=section))


def _refuse(integration: Integration, section: str, field: str, message: str) -> Refused:
    """The integration's page again (HTTP 400), keeping what was typed in ``section`` and marking ``field``."""
    return _page(integration, Typed(section, MultiDict(request.form), field, message)), 400


def index(typed: Typed = NOTHING) -> str:
    return render_template("admin_list.html", integrations=_emulator().integrations.all(), typed=typed)


def create() -> Response | Refused:
    name = request.form.get("name", "").strip()
    description = request.form.get("description", "").strip()
    problem = None
    if not name or len(name) > MAX_NAME:
        problem = "name", f"Give the integration a name of 1 to {MAX_NAME} characters."
    elif _emulator().integrations.by_name(name):
        problem = "name", f"An integration named {name!r} exists already: pick another name."
    elif len(description) > MAX_DESCRIPTION:
        problem = "description", f"The description must be at most {MAX_DESCRIPTION} characters."
    if problem:
        return index(Typed("create", MultiDict(request.form), *problem)), 400
    integration = _emulator().integrations.create(name, description)
    flash("Created. Copy the App ID, App Secret and access token into your server's settings.", "ok:credentials")
    return redirect(url_for("admin.details", integration_id=integration.id))


def details(integration_id: str) -> str:
    return _page(_integration(integration_id), NOTHING)


def _page(integration: Integration, typed: Typed) -> str:
    """The integration's page, with ``typed`` filled into the form it belongs to."""
    emulator = _emulator()
    return render_template(
        "admin_detail.html", integration=integration, permissions=PERMISSIONS, topics=TOPICS,
        subscriptions=emulator.integrations.subscriptions(integration.id), typed=typed,
        **_activity(integration), groups=emulator.community.groups(),
        member_of={g["id"] for g in emulator.community.groups()
                   if integration.page_id in emulator.community.members(g["id"])})


def live(integration_id: str) -> str:
    """Last API request and the delivery log alone, for the page to refresh them without a reload."""
    return render_template("admin_live.html", **_activity(_integration(integration_id)))


def _activity(integration: Integration) -> dict[str, Any]:
    figures = _emulator().integrations
    return {"usage": figures.last_request(integration.id), "calls": figures.recent_calls(integration.id),
            "deliveries": figures.deliveries(integration.id)}


def save_details(integration_id: str) -> Response | Refused:
    integration = _integration(integration_id)
    name = request.form.get("name", "").strip()
    description = request.form.get("description", "").strip()
    logo = request.form.get("logo_url", "").strip()
    if not name or len(name) > MAX_NAME:
        return _refuse(integration, "details", "name", f"The name must be 1 to {MAX_NAME} characters.")
    other = _emulator().integrations.by_name(name)
    if other and other.id != integration.id:
        return _refuse(integration, "details", "name", f"An integration named {name!r} exists already.")
    if len(description) > MAX_DESCRIPTION:
        return _refuse(integration, "details", "description",
                       f"The description must be at most {MAX_DESCRIPTION} characters.")
    if logo and not re.match(r"^https?://\S+$", logo):
        return _refuse(integration, "details", "logo_url", "The logo must be an http:// or https:// image URL.")
    _emulator().integrations.update(integration.id, name=name, description=description, logo_url=logo)
    forget_logos()
    return _back(integration, "details", "Saved.")


def reset_token(integration_id: str) -> Response:
    integration = _integration(integration_id)
    _emulator().integrations.reset_token(integration.id)
    devsync.credentials_reset(integration.id)
    _audit("ADMIN_RESET_ACCESS_TOKEN", integration)
    verb = "reset: the old token stopped working" if integration.access_token else "created"
    return _back(integration, "credentials", f"Access token {verb}. Copy the new one into your server's settings.")


def reset_secret(integration_id: str) -> Response:
    integration = _integration(integration_id)
    _emulator().integrations.reset_secret(integration.id)
    devsync.credentials_reset(integration.id)
    _audit("ADMIN_RESET_APP_SECRET", integration)
    return _back(integration, "credentials", "App Secret reset: webhooks are signed with the new one now. Put it "
                                             "in your server's settings (keep the old one as <BOT>_APP_SECRET_PREVIOUS "
                                             "until then).")


def save_visibility(integration_id: str) -> Response | Refused:
    integration = _integration(integration_id)
    enabled = request.form.get("enabled") == "on"
    discoverable = request.form.get("discoverable") == "on"
    if discoverable and not integration.has("Message any member"):
        return _refuse(integration, "visibility", "discoverable", "Discoverable needs the 'Message any member' "
                                                                  "permission: grant it under Permissions first.")
    _emulator().integrations.update(integration.id, enabled=int(enabled), discoverable=int(discoverable))
    state = "enabled" if enabled else "disabled: its API calls are refused and it receives no webhooks"
    return _back(integration, "visibility", f"Saved: the integration is {state}.")


def save_permissions(integration_id: str) -> Response:
    integration = _integration(integration_id)
    chosen = [p for p in PERMISSIONS if p in request.form.getlist("permissions")]
    changes: dict[str, Any] = {"permissions": chosen}
    note = ""
    if integration.discoverable and "Message any member" not in chosen:
        changes["discoverable"] = 0
        note = " It is no longer discoverable (that needs 'Message any member')."
    _emulator().integrations.update(integration.id, **changes)
    return _back(integration, "permissions", "Saved." + note)


def save_webhook(integration_id: str, topic: str) -> Response | Refused:
    integration = _integration(integration_id)
    if topic not in TOPICS:
        abort(404)
    url = request.form.get("callback_url", "").strip()
    token = request.form.get("verify_token", "").strip()
    fields = [f for f in TOPICS[topic] if f in request.form.getlist("fields")]
    section = f"webhook-{topic}"
    missing = next((name for name, given in (("callback_url", url), ("verify_token", token), ("fields", fields))
                    if not given), None)
    if missing:
        return _refuse(integration, section, missing, "Give a callback URL, a verify token and at least one field.")
    problem = handshake(url, token)
    if problem:
        return _refuse(integration, section, "callback_url", f"Not saved: the verification request failed: {problem}")
    _emulator().integrations.subscribe(integration.id, Subscription(topic, url, token, fields))
    return _back(integration, section, f"Saved: {url} answered the verification request.")


def remove_webhook(integration_id: str, topic: str) -> Response:
    integration = _integration(integration_id)
    _emulator().integrations.unsubscribe(integration.id, topic)
    return _back(integration, f"webhook-{topic}", "Unsubscribed.")


def save_security(integration_id: str) -> Response | Refused:
    integration = _integration(integration_id)
    text = request.form.get("ip_allow", "").strip()
    try:
        allow_list(text)
    except ValueError as error:
        return _refuse(integration, "security", "ip_allow", f"Not saved: {error}. Write one address or network "
                                                            "(10.0.0.0/8) per line.")
    _emulator().integrations.update(integration.id, ip_allow=text,
                                    require_proof=int(request.form.get("require_proof") == "on"))
    return _back(integration, "security", "Saved.")


def save_domains(integration_id: str) -> Response | Refused:
    integration = _integration(integration_id)
    domains = [d.strip().lower().rstrip(".") for d in re.split(r"[\s,]+", request.form.get("domains", "")) if d.strip()]
    bad = [d for d in domains if not DOMAIN.match(d)]
    if bad:
        return _refuse(integration, "domains", "domains",
                       f"Not saved: {bad[0]!r} is not a domain name (like docs.example.com).")
    _emulator().integrations.update(integration.id, link_domains=sorted(set(domains)))
    return _back(integration, "domains", "Saved.")


def save_faults(integration_id: str) -> Response | Refused:
    integration = _integration(integration_id)
    rate = _number(request.form.get("error_rate", ""), float, 0, 100)
    if rate is None:
        return _refuse(integration, "faults", "error_rate", "Not saved: the error rate is a number from 0 to 100 %.")
    latency = _number(request.form.get("latency_ms", ""), int, 0, 30_000)
    if latency is None:
        return _refuse(integration, "faults", "latency_ms", "Not saved: the latency is 0 to 30000 ms.")
    _emulator().integrations.update(integration.id, error_rate=rate / 100, latency_ms=latency)
    return _back(integration, "faults", "Saved.")


def _number(text: str, kind: type[float] | type[int], low: float, high: float) -> float | None:
    """``text`` as a number of ``kind`` from ``low`` to ``high`` (empty is 0), or None when it is not one."""
    try:
        value = kind(text or 0)
    except ValueError:
        return None
    return value if low <= value <= high else None


def save_groups(integration_id: str) -> Response:
    integration = _integration(integration_id)
    chosen = set(request.form.getlist("groups"))
    for group in _emulator().community.groups():
        _emulator().activity.membership(group["id"], integration.page_id, group["id"] in chosen)
    return _back(integration, "groups", "Saved.")


def delete(integration_id: str) -> Response | Refused:
    integration = _integration(integration_id)
    if request.form.get("confirm", "").strip() != integration.name:
        return _refuse(integration, "delete", "confirm", "Not deleted: type the integration's name exactly to confirm.")
    _emulator().integrations.delete(integration.id)
    _audit("ADMIN_DELETE_INTEGRATION", integration)
    flash(f"Deleted {integration.name}: its token no longer works and its subscriptions are gone.", "ok:list")
    return redirect(url_for("admin.index"))

"""The Graph API the framework calls (PROTOCOL.md section 5), checked as Workplace checks it.

Every call is authorised in a fixed order — access token (or app token for ``/app/subscriptions``),
enabled state, server IP allow list, appsecret_proof, injected faults, permission — and refused
with a Graph-shaped error at the first that fails. Calls that name an integration are counted
for its Last API request figures and answered with usage headers; accepted calls are recorded
for ``GET /_emulator/calls`` (the console and tests read it).
"""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from . import content, messaging, params, subscriptions
from .calls import Call, GraphError, Handler, Permission, Recorder, graph_error, state
from .idempotency import HEADER
from .integrations import Integration
from .provision import dev_settings

__all__ = ["Recorder", "blueprint", "graph_error"]

#: How long, in development, a token or App Secret keeps working after an Admin Panel reset (make run reloads
#: the bot server with the new one within about a second).
DEV_GRACE_SECONDS = 10.0
VERSION = re.compile(r"^v\d+(\.\d+)?(/|$)")
AUTH_PARAMS = ("access_token", "appsecret_proof", "appsecret_time")
CALLS_PER_HOUR = 20_000

def blueprint() -> Blueprint:
    bp = Blueprint("graph", __name__)
    bp.add_url_rule("/_emulator/calls", view_func=_calls, methods=["GET"])
    bp.add_url_rule("/", view_func=_root, methods=["GET", "POST", "DELETE"])
    bp.add_url_rule("/<path:path>", view_func=_dispatch, methods=["GET", "POST", "DELETE"])
    return bp


def _root() -> WerkzeugResponse:
    """The Graph API's root (``GET /?ids=...``); a bare ``GET /`` from a browser, which no Graph
    client sends, goes to the people's side at ``/work/``."""
    if request.method == "GET" and not request.args and "Authorization" not in request.headers:
        return redirect(url_for("people.home"))
    return _dispatch("")


def _calls() -> Response:
    return jsonify({"calls": state().recorder.calls})


def _dispatch(path: str) -> Response:
    path = VERSION.sub("", path.strip("/"))
    found = _route(request.method, path)
    if found is None:
        return graph_error(f"Unsupported {request.method.lower()} request: {path}", 100)
    handler, permission, args = found
    emulator = state()
    integration: Integration | None = None
    code = None
    try:
        body = _body()
        app_call = path == "app/subscriptions"
        integration = _app_caller() if app_call else _caller()
        _open_to(integration)
        if not app_call:
            _check(integration, permission)
        key = request.headers.get(HEADER) if request.method != "GET" else None
        repeated = emulator.answers.get(integration.id, key) if key else None
        if repeated is not None:
            status, response = 200, jsonify(repeated)
        else:
            result = handler(Call(integration, request.method, path, body), args)
            status, response = 200, jsonify(result)
            if key:
                emulator.answers.keep(integration.id, key, result)
            if request.method != "GET":
                emulator.recorder.record(integration.name, request.method, path, body)
    except GraphError as refusal:
        status, response, code = refusal.status, refusal.response(), refusal.code
        integration = integration or refusal.integration
    if integration is not None:
        emulator.integrations.record_call(integration.id, request.method, path, status, code)
        _usage_headers(response, integration)
    return response


# authorisation ---------------------------------------------------------------------------------
def _token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip() or None
    return request.args.get("access_token") or None


def _caller() -> Integration:
    """The integration whose access token the call carries."""
    token = _token()
    if token is None:
        raise GraphError("An access token is required to request this resource.", 104, 400)
    integrations = state().integrations
    integration = integrations.by_token(token)
    if integration is None:
        retired = integrations.by_retired_token(token)
        grace = _in_grace(retired, token) if retired is not None else None
        if grace is not None:
            return grace
        if retired is not None:
            raise GraphError("Invalid OAuth access token: it was reset in the Admin Panel; use the new one.", 190,
                             401, subcode=460, integration=retired)
        raise GraphError("Invalid OAuth access token.", 190, 401)
    return integration


def _app_caller() -> Integration:
    """The integration named by an app token ``APP_ID|APP_SECRET`` (``/app/subscriptions`` needs one)."""
    token = _token() or ""
    integration = state().integrations.by_app_token(token) if "|" in token else None
    if integration is None:
        raise GraphError("Invalid OAuth access token: /app/subscriptions needs the app token APP_ID|APP_SECRET.",
                         190, 401)
    return integration


def _open_to(integration: Integration) -> None:
    """Refuse a disabled integration, and a caller outside its server IP allow list."""
    if not integration.enabled:
        raise GraphError("(#10) This integration is disabled: an admin can enable it in the Admin Panel "
                         "(Visibility).", 10, 403)
    if not integration.ip_allowed(request.remote_addr):
        raise GraphError(f"(#5) Unauthorized source IP address {request.remote_addr}: not in the integration's "
                         "server IP allow list.", 5, 403)


def _in_grace(integration: Integration, token: str | None = None) -> Integration | None:
    """Development only (``make run``, whose runner reloads the bot server after an Admin Panel reset): the
    integration with the token or App Secret it had before a reset less than DEV_GRACE_SECONDS ago, so the bot's
    calls in the second before its reload are not refused; None elsewhere, where a reset takes effect at once."""
    if dev_settings(current_app).env_file is None:
        return None
    return state().integrations.retired_within(integration, DEV_GRACE_SECONDS, token)


def _check(integration: Integration, permission: Permission) -> None:
    """The proof, then injected latency and errors (as a flaky network would), then the permission."""
    problem = integration.proof_error(request.args)
    if problem and (before := _in_grace(integration)) is not None and before.proof_error(request.args) is None:
        problem = None
    if problem:
        raise GraphError(f"(#100) {problem}", 100)
    if integration.latency_ms:
        time.sleep(integration.latency_ms / 1000)
    if integration.error_rate and random.random() < integration.error_rate:
        raise GraphError("(#2) Service temporarily unavailable (injected fault)", 2, 503, type="GraphMethodException")
    needed = (permission,) if isinstance(permission, str) else permission or ()
    if needed and not any(integration.has(p) for p in needed):
        raise GraphError(f"(#200) Requires the {' or '.join(repr(p) for p in needed)} permission: an admin can "
                         "grant it in the Admin Panel (Permissions).", 200, 403)


def _usage_headers(response: Response, integration: Integration) -> None:
    share = min(100, state().integrations.calls_in_last_hour(integration.id) * 100
                // CALLS_PER_HOUR)
    usage = {"call_count": share, "total_cputime": share // 2, "total_time": share // 2}
    response.headers["X-App-Usage"] = json.dumps(usage)
    response.headers["X-Business-Use-Case-Usage"] = json.dumps(
        {integration.page_id: [{"type": "messenger", **usage, "estimated_time_to_regain_access": 0}]})


def _body() -> dict[str, Any]:
    """The call's parameters as Graph merges them: the query string, then a form or a JSON object over it;
    a nested object may come as JSON or in bracket form (``persistent_menu[0][locale]=default``)."""
    try:
        query = params.parse((k, v) for k, v in request.args.items(multi=True) if k not in AUTH_PARAMS)
        if request.method == "GET":
            return query
        if request.data and request.is_json:
            body = _json_body()
            if not isinstance(body, dict):
                raise GraphError("(#100) The request body must be a JSON object.", 100)
            return {**query, **body}
        return {**query, **params.parse(request.form.items(multi=True))}
    except params.ParamError as error:
        raise GraphError(f"(#100) {error}", 100) from error


def _json_body() -> Any:
    """The JSON body, or None when it is not JSON; a body nested too deep is refused (ParamError)."""
    try:
        return params.loads(request.get_data())
    except params.TooDeep:
        raise
    except params.ParamError:
        return None


# routing ---------------------------------------------------------------------------------------
def _route(method: str, path: str) -> tuple[Handler, Permission, list[str]] | None:
    for verb, pattern, handler, permission in ROUTES:
        found = pattern.fullmatch(path)
        if verb == method and found:
            return handler, permission, list(found.groups())
    return None


ID = r"([\w.-]+)"
EMAIL = r"([\w.+-]+@[\w.-]+)"  # a member read by the address they sign in with (/{email_address})
THREAD = r"(t_\d+)"
#: Every endpoint: method, path pattern (the groups are the handler's arguments), handler, permission.
ROUTES: list[tuple[str, re.Pattern[str], Handler, Permission]] = [
    (verb, re.compile(pattern), handler, permission) for verb, pattern, handler, permission in [
        ("GET", "", content.read_many, None),
        ("POST", "me/messages", messaging.send, "Message any member"),
        ("POST", "me/messenger_profile", messaging.profile_set, "Message any member"),
        ("GET", "me/messenger_profile", messaging.profile_get, None),
        ("DELETE", "me/messenger_profile", messaging.profile_delete, "Message any member"),
        ("POST", "me/thread_settings", messaging.thread_settings, None),
        ("DELETE", "me/thread_settings", messaging.thread_settings, None),
        ("GET", "me/subscribed_apps", messaging.subscribed_apps, None),
        ("POST", "me/subscribed_apps", messaging.subscribe_app, None),
        ("GET", "app/subscriptions", subscriptions.subscriptions_list, None),
        ("POST", "app/subscriptions", subscriptions.subscribe, None),
        ("DELETE", "app/subscriptions", subscriptions.unsubscribe, None),
        ("POST", f"{THREAD}/threadname", messaging.rename_thread, "Message any member"),
        ("POST", f"{THREAD}/participants", messaging.participants, "Message any member"),
        ("DELETE", f"{THREAD}/participants", messaging.participants, "Message any member"),
        ("GET", f"{THREAD}/participants", messaging.participants_list, "Message any member"),
        ("POST", f"{ID}/comments", content.comment, ("Manage group content", "Mention bot")),
        ("GET", f"{ID}/comments", content.comments_list, "Read group content"),
        ("POST", f"{ID}/feed", content.feed_post, "Manage group content"),
        ("GET", f"{ID}/feed", content.feed_list, "Read group content"),
        ("POST", f"{ID}/likes", content.like, "Manage group content"),
        ("GET", ID, content.read, None),
        ("GET", EMAIL, content.read, None),
    ]
]

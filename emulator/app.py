"""The emulator's Flask app: the Graph API (``/``, as graph.facebook.com serves it), the Admin Panel
(``/admin``) and the people's side (Work Chat and groups, ``/work/``), on paths that cannot collide.
``python -m emulator`` serves it on 127.0.0.1:8001.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, request
from flask.json.provider import DefaultJSONProvider

from . import admin, graph, live, params, people, seed
from .activity import Activity
from .community import Community
from .idempotency import Answers
from .integrations import Integrations
from .previews import Previews
from .provision import register as register_dev_api
from .store import Store
from .webhooks import Courier, DeliverySettings

MAX_BODY_BYTES = 1024 * 1024


@dataclass
class Emulator:
    """Everything the emulator's views share, found in ``app.extensions["emulator"]``."""

    store: Store
    integrations: Integrations
    community: Community
    courier: Courier
    activity: Activity
    previews: Previews
    recorder: graph.Recorder
    live: live.Hub
    answers: Answers = field(default_factory=Answers)

    def close(self) -> None:
        """Stop delivering webhooks and end every live stream, so stopping the server waits for neither."""
        self.courier.close()
        self.live.close()


def emulator_of(app: Flask) -> Emulator:
    """The :class:`Emulator` an app made by :func:`create_app` serves (``app.extensions["emulator"]``)."""
    found = app.extensions.get("emulator")
    if not isinstance(found, Emulator):
        raise RuntimeError(f"{app.name} is not an emulator app (emulator.app.create_app makes one)")
    return found


def create_app(env: Mapping[str, str] | None = None, db: str | Path | None = None, reset: bool = False) -> Flask:
    """The emulator for the integrations whose credentials are in ``env`` (default: the environment).

    ``db`` is the SQLite file (default ``EMULATOR_DB`` from ``env``, else in memory); a new or
    ``reset`` database is seeded, an existing one re-reads the example bots' credentials from ``env``.
    Other settings: ``EMULATOR_BOT_URL`` (where the seeded webhooks point, default
    http://127.0.0.1:8000), ``EMULATOR_RETRY_DELAYS`` ("0.5,1,2,4" seconds) and
    ``EMULATOR_DELIVERY_TIMEOUT`` (seconds).
    """
    env = os.environ if env is None else env
    path = str(db or env.get("EMULATOR_DB") or ":memory:")
    if reset and path != ":memory:":
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
    store = Store(path)
    store.check_version()
    if store.is_empty():
        seed.seed(store, env, env.get("EMULATOR_BOT_URL", seed.DEFAULT_BOT_URL).rstrip("/"))
    else:
        seed.sync(store, env)
    emulator = _assemble(store, DeliverySettings.parse(env.get("EMULATOR_RETRY_DELAYS"),
                                                       env.get("EMULATOR_DELIVERY_TIMEOUT")))
    app = Flask("emulator", static_folder="static", template_folder="templates",
                root_path=str(Path(__file__).parent))
    app.json = GuardedJSON(app)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, SECRET_KEY=_session_key(store))
    app.extensions["emulator"] = emulator
    register_dev_api(app, env)
    app.before_request(_same_origin)
    app.register_blueprint(admin.blueprint(), url_prefix="/admin")
    app.register_blueprint(people.blueprint(), url_prefix="/work")
    app.register_blueprint(live.blueprint())
    app.register_blueprint(graph.blueprint())
    app.register_error_handler(404, lambda e: graph.graph_error("Unknown path components", 2500, 404))
    app.register_error_handler(405, lambda e: graph.graph_error("Unsupported method", 100, 405))
    app.register_error_handler(413, lambda e: graph.graph_error("(#100) The request body is too large", 100, 413))
    logging.getLogger("emulator").setLevel(logging.INFO)
    return app


class GuardedJSON(DefaultJSONProvider):
    """Flask's JSON, reading bodies through :func:`emulator.params.loads`: one nested deeper than it allows is a
    bad request (400) on every page's and API's ``request.get_json``, not a RecursionError (500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return params.loads(s)


def _same_origin() -> None:
    """Refuse a form or API POST that a page on another site sent (the sign-in is a cookie a cross-site form
    would carry, and browsers send ``Origin`` with every cross-site POST); Graph API calls carry no ``Origin``."""
    origin = request.headers.get("Origin")
    if request.method != "GET" and origin and urlsplit(origin).netloc != request.host:
        abort(403)


def _assemble(store: Store, settings: DeliverySettings) -> Emulator:
    hub = live.Hub()
    integrations, community = Integrations(store, hub), Community(store, hub)
    courier = Courier(store, integrations, settings)
    return Emulator(store, integrations, community, courier, Activity(community, integrations, courier),
                    Previews(integrations, courier), graph.Recorder(), hub)


def _session_key(store: Store) -> str:
    """The key that signs the Admin Panel's flash messages and the viewer cookie, kept in the database."""
    key = store.meta("session_key")
    if key is None:
        key = secrets.token_hex(32)
        store.set_meta("session_key", key)
    return key

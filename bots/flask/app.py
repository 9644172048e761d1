"""Build the Flask app that serves a set of bots and nothing else: :class:`~bots.flask.BotServer` on an app of
its own, with an index of the bots and JSON errors on every URL."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import requests
from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from ..bot import Bot
from ..deployment import Deployment
from ..executor import Executor
from .extension import BotServer, http_error, server_error


def make_app(bots: Iterable[Bot], env: Mapping[str, str], *, executor: Executor | None = None,
             session_factory: Callable[[], requests.Session] | None = None, name: str = "bots",
             fast_deliveries: bool = True) -> Flask:
    """A Flask app serving ``bots`` with settings from ``env``; raises ConfigError on a bad setting.
    ``fast_deliveries`` as for :class:`~bots.flask.BotServer`."""
    app = Flask(name, static_folder=None)
    if isinstance(app.json, DefaultJSONProvider):  # Flask's own provider, the one that sorts
        app.json.sort_keys = False
    deployment = BotServer(bots=bots, env=env, executor=executor, session_factory=session_factory,
                           fast_deliveries=fast_deliveries).init_app(app)
    app.config["MAX_CONTENT_LENGTH"] = deployment.settings.max_body_bytes
    app.add_url_rule("/", view_func=_index)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, server_error)
    return app


def _index() -> Response:
    deployment: Deployment = current_app.extensions["bots"]
    base = request.host_url.rstrip("/")
    return jsonify({"bots": [
        {"name": name, "description": rt.bot.description, "webhook": f"{base}/webhooks/{name}",
         "handlers": len(rt.bot.listeners)}
        for name, rt in deployment.runtimes.items()
    ]})

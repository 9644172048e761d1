"""``BotServer``: the Flask extension that serves a deployment's bots from an app of your own."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests
from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from ..bot import Bot
from ..deployment import Deployment, build
from ..executor import Executor
from ..wsgi import Deliveries
from . import admin, health, metrics, webhook
from .body import BodyErrors
from .cli import bots_cli

logger = logging.getLogger("bots")

#: The config value types that can stand for a setting (``DATA_DIR``, ``HELPDESK_APP_SECRET``, ``HANDLER_THREADS``).
_SETTING_TYPES = (str, int, float)


class BotServer:
    """Serves ``bots`` from a Flask app: ``BotServer(app, bots=[...])``, or ``BotServer(bots=[...])`` then
    ``init_app(app)`` (the application-factory way).

    Settings come from ``app.config`` first, then ``env`` (the process environment by default), under the
    names ``.env.example`` documents. Webhooks are served under ``url_prefix``; an ordinary delivery is answered
    in front of Flask (:class:`bots.wsgi.Deliveries`: the app's ``before_request`` and ``after_request`` hooks do
    not see it) unless ``fast_deliveries`` is False, at about twice the CPU per delivery. The admin API, ``/healthz``,
    ``/readyz`` and ``/metrics`` beside the app's own routes. The inbox's threads start once per process,
    on the first request (or when gunicorn boots the worker, with this project's ``gunicorn.conf.py``), and
    stop when the process exits.
    """

    def __init__(self, app: Flask | None = None, *, bots: Iterable[Bot] = (), url_prefix: str = "/webhooks",
                 env: Mapping[str, str] | None = None, executor: Executor | None = None,
                 session_factory: Callable[[], requests.Session] | None = None, fast_deliveries: bool = True) -> None:
        self.bots = list(bots)
        self.fast_deliveries = fast_deliveries
        self.url_prefix = url_prefix
        self.env = env
        self.executor = executor
        self.session_factory = session_factory
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> Deployment:
        """Build the deployment from ``app.config`` and the environment and mount it on ``app``."""
        deployment = build(self.bots, settings_of(app.config, os.environ if self.env is None else self.env),
                           executor=self.executor, session_factory=self.session_factory)
        app.extensions["bots"] = deployment
        for blueprint in (webhook.blueprint(self.url_prefix), admin.blueprint(), health.blueprint(),
                          metrics.blueprint()):
            _answer_errors_in_json(blueprint)
            app.register_blueprint(blueprint)
        app.cli.add_command(bots_cli)
        wsgi_app: Callable[..., Any] = BodyErrors(app.wsgi_app)
        if self.fast_deliveries:
            wsgi_app = Deliveries(wsgi_app, lambda: deployment.receiver, self.url_prefix)
        # Flask's documented way to add WSGI middleware replaces the method on the instance.
        app.wsgi_app = StartOnFirstRequest(  # type: ignore[method-assign]
            _behind_proxies(wsgi_app, deployment.settings.proxy_hops), deployment.start)
        return deployment


def settings_of(config: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """``env`` overlaid with the upper-case settings in a Flask ``config`` (text and numbers; Flask's own
    keys are read by nothing here)."""
    chosen = {key: str(value) for key, value in config.items()
              if key.isupper() and isinstance(value, _SETTING_TYPES) and not isinstance(value, bool)}
    return {**env, **chosen}


class StartOnFirstRequest:
    """WSGI middleware that calls ``start`` before the first request, so tools that only load the
    app (``flask bots deadletters``) never start handler threads."""

    def __init__(self, wsgi_app: Callable[..., Any], start: Callable[[], None]) -> None:
        self.wsgi_app = wsgi_app
        self.start: Callable[[], None] | None = start

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.start is not None:
            try:
                self.start()
                self.start = None
            except Exception:
                logger.exception("could not start the inbox's workers; trying again on the next request")
        return self.wsgi_app(environ, start_response)


def _behind_proxies(wsgi_app: Callable[..., Any], hops: int) -> Callable[..., Any]:
    """Trust ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from ``hops`` proxies in front (``PROXY_HOPS``, nginx:
    1), so the client's address, not the proxy's, is what refusals log; with 0 the headers are ignored."""
    return ProxyFix(wsgi_app, x_for=hops, x_proto=hops) if hops else wsgi_app


def _answer_errors_in_json(blueprint: Blueprint) -> None:
    """Errors raised in the blueprint's views answer in the project's JSON shape; the host app's own routes
    keep whatever error pages it has."""
    blueprint.register_error_handler(HTTPException, http_error)
    blueprint.register_error_handler(Exception, server_error)


def http_error(error: HTTPException) -> Response:
    """An HTTP error as ``{"error": {"message": ...}}``, with the message a webhook client can act on."""
    messages = {
        404: "no such URL: webhooks are served at /webhooks/<bot> and /webhooks/<bot>/<topic>",
        405: f"method {request.method} is not allowed here: use GET for the handshake and POST for deliveries",
        413: f"body is larger than {request.max_content_length} bytes",
    }
    if isinstance(error, ClientDisconnected):
        messages[400] = "the body ended before the length its headers promised (Content-Length or chunked)"
    response = jsonify({"error": {"message": messages.get(error.code or 500, error.description)}})
    response.status_code = error.code or 500
    if error.code == 405:
        response.headers["Allow"] = ", ".join(getattr(error, "valid_methods", None) or ())
    return response


def server_error(error: Exception) -> Response:
    """A 500 that names nothing of the request but says where the details are."""
    logger.error("unexpected error on %s %s", request.method, request.path, exc_info=error)
    response = jsonify({"error": {"message": "internal error: the server log has the details"}})
    response.status_code = 500
    return response

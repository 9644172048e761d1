"""The emulator's Flask app: ``python -m emulator`` serves it on 127.0.0.1:8001."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask

from . import graph
from .integrations import Integration, from_settings


@dataclass
class Emulator:
    integrations: dict[str, Integration]
    recorder: graph.Recorder


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """The emulator serving the integrations whose credentials are in ``env`` (default: the environment)."""
    env = os.environ if env is None else env
    app = Flask("emulator", static_folder=None)
    app.extensions["emulator"] = Emulator(from_settings(env), graph.Recorder())
    app.register_blueprint(graph.blueprint())
    app.register_error_handler(404, lambda e: graph.graph_error("Unknown path components", 2500, 404))
    app.register_error_handler(405, lambda e: graph.graph_error("Unsupported method", 100, 405))
    logging.getLogger("emulator").setLevel(logging.INFO)
    return app

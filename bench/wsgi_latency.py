"""The real app for the latency benchmark: the helpdesk bot with the durable SQLite inbox, answering
through the Graph test server whose URL ``bench/latency.py`` passes in ``BENCH_GRAPH_URL``."""

from __future__ import annotations

import os

from flask import Flask

from app import create_app
from bench.payloads import CREDENTIALS


def __getattr__(name: str) -> Flask:
    if name != "app":
        raise AttributeError(name)
    application = create_app({"DOTENV": False, "ENVIRON": dict(CREDENTIALS), "BOTS": "helpdesk",
                              "GRAPH_API_URL": os.environ["BENCH_GRAPH_URL"], "DATA_DIR": os.environ["BENCH_DATA_DIR"],
                              "LOG_LEVEL": "WARNING"})
    globals()["app"] = application
    return application

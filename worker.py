"""The Celery worker's entry point: ``celery -A worker worker`` runs the inbox of the bots ``app.py`` serves.

The worker builds the same deployment as a web process (settings, bots, Graph clients, dispatcher)
from the environment and ``.env``, with no Flask app; ``REDIS_URL`` must be set, and ``HANDLERS`` names the package
to find bots in (``handlers`` by default). Celery finds the Celery app under the name ``app``.
"""

from __future__ import annotations

import os
import sys

from app import create_deployment
from bots import ConfigError
from bots.inbox.celery import CeleryInbox

try:
    deployment = create_deployment({"HANDLERS": os.environ.get("HANDLERS") or "handlers"})
except ConfigError as error:
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(3) from None
inbox = deployment.inbox
if not isinstance(inbox, CeleryInbox):
    print("error: REDIS_URL: is not set: the Celery worker needs the Redis the web processes use", file=sys.stderr)
    raise SystemExit(3)
app = inbox.celery

"""The local Workplace: the other end of the protocol, for ``make run``, demos and tests.

The Admin Panel (integrations and their settings), Work Chat and groups with link previews,
the Graph API the framework calls (checked as Workplace checks it), and signed, batched,
retried webhooks, with its state in SQLite. ``python -m emulator`` serves it.
"""

from .app import create_app

__all__ = ["create_app"]

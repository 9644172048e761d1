"""The local Workplace: the other end of the protocol, for ``make run``, demos and tests.

This first part serves the Graph API calls bots make to answer (Send API and comments),
checking the token and appsecret_proof of each integration and recording what was sent.
"""

from .app import create_app

__all__ = ["create_app"]

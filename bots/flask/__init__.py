"""The Flask adapter: every module that knows Flask sits in this package.

``BotServer(app, bots=[...])`` (or ``server.init_app(app)``) adds the webhook routes (``webhook``), the
admin API (``admin``), the probes (``health``), ``/metrics`` (``metrics``) and the ``flask bots`` commands
(``cli``) to a Flask app of yours, over a deployment built by :func:`bots.deployment.build`; ``make_app``
(``app``) builds an app that serves bots and nothing else; ``command`` is the ``bots`` console script.
"""

from .app import make_app
from .extension import BotServer

__all__ = ["BotServer", "make_app"]

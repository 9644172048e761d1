"""The soak's bot: the counting bench bot's run record, plus a real reply through Graph for each message.

``bench/soak.py`` needs a handler that goes the whole way a production bot goes: the handler runs,
its reply is held in the outbox, committed with the event, and a sender thread delivers it to Graph
(``POST /me/messages``, retried, with its idempotency key). The handler here does both halves:

- records the run as the counting bot does (``<mid> <time.time()>`` in ``BENCH_RUNS_DIR/<pid>.runs``,
  :class:`bench.counting_bot.Runs`), so the harness knows when each handler ran;
- replies ``soak reply to <mid>``, so the Graph stand-in (``bench/graph_standin.py``) can tell which
  delivery each reply answers, and count replies per delivery.

It has the counting bot's name, path and credentials (``counter``, ``/webhooks/counter``,
``COUNTER_*``), so ``bench/payloads.py``'s signed deliveries and ``bench/throughput.py``'s loads and
server serve it unchanged. It lives outside ``bench/bench_bots`` so that ``make bench`` keeps serving
the counting bot alone.

``bench.replying_bot:app`` is the app for gunicorn, built on first use as ``bench/wsgi_bench.py``
builds its own: ``create_app`` with every setting from the environment (``GRAPH_API_URL`` points the
bot at the stand-in), ``.env`` not read.
"""

from __future__ import annotations

from flask import Flask

from app import create_app
from bench.counting_bot import Runs
from bench.payloads import COUNTER_BOT
from bots import Bot

#: The reply's text is this prefix and the message id it answers (``bench/graph_standin.py`` parses it).
REPLY_PREFIX = "soak reply to "

bot = Bot(COUNTER_BOT, description="bench/soak.py: records each handler run and replies through Graph")
runs = Runs()


@bot.on_message()
def reply(event, ctx):
    """Record the run, then reply naming the message: one Graph call per delivery, through the outbox."""
    runs.record(event.mid)
    ctx.reply(f"{REPLY_PREFIX}{event.mid}")


def __getattr__(name: str) -> Flask:
    """Build ``app`` when gunicorn first asks for it."""
    if name != "app":
        raise AttributeError(name)
    application = create_app({"BOTS": [bot], "DOTENV": False})
    globals()["app"] = application
    return application

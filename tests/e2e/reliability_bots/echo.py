"""Replies ``re:<text>`` to every message and appends one line per handler run to ``RUNS_FILE``,
so the suite can tell runs (which may repeat after a crash) from effects (which must not)."""

from __future__ import annotations

import os

from bots import Bot

bot = Bot("echo", description="reliability suite: one reply per message")


@bot.on_message()
def echo(event, ctx):
    runs = os.environ.get("RUNS_FILE")
    if runs:
        with open(runs, "a", errors="backslashreplace") as record:  # a lone surrogate in a text stays one line
            record.write(f"{event.text}\n")
    if event.text.startswith("raise"):
        raise RuntimeError(f"asked to fail on {event.text}")
    ctx.reply(f"re:{event.text}")

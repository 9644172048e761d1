"""Records each run in ``RUNS_FILE`` and answers through ``ctx``, so a test can tell runs (which may repeat)
from effects (which must not): ``count`` keeps a counter in ``ctx.state``; ``flaky`` replies and then
fails on its first two runs; ``raise`` always fails; ``slow`` takes 2.5 s; anything else is echoed after a
short random pause."""

from __future__ import annotations

import os
import random
import time

from bots import Bot

bot = Bot("lanes", description="Celery inbox tests")


def runs() -> list[str]:
    path = os.environ["RUNS_FILE"]
    return open(path).read().splitlines() if os.path.exists(path) else []


@bot.on_message()
def handle(event, ctx):
    with open(os.environ["RUNS_FILE"], "a") as record:
        record.write(f"{event.text}\n")
    text = event.text
    if text.startswith("count"):
        ctx.state["count"] = ctx.state.get("count", 0) + 1
        ctx.reply(f"count:{ctx.state['count']}")
        if text == "count-then-raise":
            raise RuntimeError("asked to fail after counting")
        return
    if text == "flaky":
        ctx.reply("flaky:partial")
        if runs().count("flaky") < 3:
            raise RuntimeError("flaky fails twice")
        ctx.reply("flaky:done")
        return
    if text == "slow":
        time.sleep(2.5)
        ctx.reply("slow:done")
        return
    if text.startswith("raise"):
        raise RuntimeError(f"asked to fail on {text}")
    time.sleep(random.uniform(0, 0.02))
    ctx.reply(f"re:{text}")

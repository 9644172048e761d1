"""A user module that breaks the typed contract: a Postback handler registered for messages.

tests/test_types.py expects ``mypy --strict`` to report it; importing it still works.
"""

from __future__ import annotations

from bots import Bot, Context, Postback

bot = Bot("typed_wrong")


@bot.on_message("order")
def order(event: Postback, ctx: Context) -> None:
    ctx.reply(f"ordering {event.title}")

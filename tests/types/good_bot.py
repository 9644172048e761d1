"""A user module that keeps the typed contract: ``mypy --strict`` finds no error here (tests/test_types.py)."""

from __future__ import annotations

from bots import Bot, Context, Event, Mention, Message, Postback, QuickReply

bot = Bot("typed_good")


@bot.on_postback("ORDER")
def order(event: Postback, ctx: Context) -> None:
    ctx.reply(f"ordering {event.title}")


@bot.on_message(r"^ticket (\d+)")
def ticket(event: Message, ctx: Context) -> None:
    number = ctx.match.group(1) if ctx.match else "?"
    ctx.state["ticket"] = number
    ctx.reply(f"ticket {number} from {event.sender_id}")


@bot.on_quick_reply("YES")
def yes(event: QuickReply, ctx: Context) -> None:
    ctx.reply(f"noted: {event.payload}")


@bot.on_mention
def mentioned(event: Mention, ctx: Context) -> None:
    ctx.comment(f"on it ({event.post_id})")


@bot.on("group", "comments", verb="add")
def commented(event: Event, ctx: Context) -> None:
    ctx.logger.info("comment on %s", event.describe())


# A handler for any event may serve a decorator that delivers a narrower one.
@bot.on_postback()
def any_postback(event: Event, ctx: Context) -> str:
    return event.describe()


# The decorators return the function unchanged, so it stays callable (and typed) in tests.
assert callable(order) and callable(ticket)

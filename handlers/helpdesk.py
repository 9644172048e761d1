"""The IT helpdesk bot: a help menu with quick replies, a two-step printer-ticket flow that keeps
its place in ``ctx.state``, and answers to mentions.

The example every doc points to; ``tests/test_helpdesk.py`` tests it with ``bots.testing``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time

from bots import Bot, Context, Event, Mention, Message, Postback, QuickReply
from bots.bot import Next
from bots.messages import postback_button, url_button

bot = Bot(
    "helpdesk",
    description="IT helpdesk: printers, laptops and access requests",
    discoverable=True,
    get_started="GET_STARTED",
    greeting="Hi {{user_first_name}}! I'm the IT helpdesk: printers, laptops, access. Tap Get Started.",
    menu=[postback_button("Help menu", "MENU"), postback_button("Talk to a human", "HUMAN"),
          url_button("IT status page", "https://status.example.com")],
)
log = logging.getLogger("bots.helpdesk")

MENU = [("Printer", "PRINTER"), ("Laptop", "LAPTOP"), ("Access", "ACCESS"), ("Talk to a human", "HUMAN")]
FLOORS = [(f"Floor {n}", f"FLOOR_{n}") for n in range(1, 5)]


@bot.on_postback("GET_STARTED")
def get_started(event: Postback, ctx: Context) -> None:
    ctx.reply("Hi, I'm the IT helpdesk. What do you need help with?", quick_replies=MENU)


@bot.on_postback("MENU")
@bot.on_message(r"(?i)^\s*(help|menu|hi|hello)\b")
def show_help(event: Postback | Message, ctx: Context) -> None:
    ctx.reply("What do you need?", quick_replies=MENU)


@bot.on_quick_reply("PRINTER")
def printer(event: QuickReply, ctx: Context) -> None:
    ctx.reply("Which floor is the printer on?", quick_replies=FLOORS)


@bot.on_quick_reply(re.compile(r"FLOOR_(?P<floor>\d)"))
def printer_floor(event: QuickReply, ctx: Context) -> None:
    assert ctx.match is not None  # the payload pattern matched, or this handler would not run
    ctx.state["printer_floor"] = ctx.match.group("floor")
    ctx.reply("What is wrong with it? Describe it in a few words (or type 'cancel').")


@bot.on_message(r"(?i)^\s*cancel\s*$")
def cancel(event: Message, ctx: Context) -> None:
    dropped = ctx.state.pop("printer_floor", None)
    ctx.reply("Cancelled: no ticket was opened." if dropped else "There is nothing to cancel.", quick_replies=MENU)


@bot.on_quick_reply("LAPTOP")
def laptop(event: QuickReply, ctx: Context) -> None:
    ctx.reply("Try a restart first (hold the power button for 10 seconds). Still stuck? "
              "Bring it to the IT desk on floor 2, or type 'help' for the menu.")


@bot.on_quick_reply("ACCESS")
def access(event: QuickReply, ctx: Context) -> None:
    ctx.reply("Tell me which system you need, starting with 'access', e.g. 'access payroll'.")


@bot.on_message(r"(?i)^\s*access\s+(?P<system>\S.*)$")
def access_request(event: Message, ctx: Context) -> None:
    assert ctx.match is not None  # the text pattern matched, or this handler would not run
    system = ctx.match.group("system").strip()
    ctx.reply(f"Ticket {ticket_number(event)}: access to {system} was requested; your manager will be asked.")


@bot.on_postback("HUMAN")
@bot.on_quick_reply("HUMAN")
def human(event: Postback | QuickReply, ctx: Context) -> None:
    ctx.reply("An IT colleague will message you here shortly.")


@bot.on_mention
def mentioned(event: Mention, ctx: Context) -> None:
    ctx.comment("On it. For anything private, message me directly and type 'help'.")


@bot.on("group", "comments", verb="add", when=lambda event: "#it" in (event.text or "").lower())
def tagged_comment(event: Event, ctx: Context) -> None:
    ctx.comment(f"Logged as ticket {ticket_number(event)}; IT will follow up in this thread.")


@bot.on_message()
def free_text(event: Message, ctx: Context) -> None:
    """The problem description when a printer ticket is waiting for one; otherwise a pointer to help."""
    floor = ctx.state.pop("printer_floor", None)
    if floor is None:
        ctx.reply("Sorry, I did not get that. Type 'help' to see what I can do.")
        return
    ctx.reply(f"Thanks. Ticket {ticket_number(event)} is open for the printer on floor {floor} "
              f"(\"{(event.text or '').strip()[:80]}\"); someone from IT will be there within the hour.")


@bot.middleware
def timing(event: Event, ctx: Context, call_next: Next) -> object:
    started = time.perf_counter()
    try:
        return call_next(event, ctx)
    finally:
        log.info("%s took %.1f ms", event.describe(), (time.perf_counter() - started) * 1000)


@bot.error_handler
def apologise(error: BaseException, event: Event, ctx: Context) -> None:
    log.error("helpdesk failed on %s: %s", event.describe(), error)
    if event.object == "page" and event.field == "messages":
        ctx.reply("Something went wrong on my side. Please try again in a minute.")


def ticket_number(event: Event) -> str:
    """A short ticket number, stable for one event so a redelivery names the same ticket."""
    return "HD-" + hashlib.sha256(event.dedupe_key.encode()).hexdigest()[:6].upper()

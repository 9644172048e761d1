"""Every message a person reads, in one place: start-up errors, log hints and JSON error texts.

Each says what to do next and never includes a secret or a value that could be one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .events import Event

MISSING_SETTING = (
    "is not set: copy it from the Admin Panel (Integrations > {bot}) into .env or the environment; "
    ".env.example lists every variable"
)
EMPTY_SETTING = "is empty: give it the value from the Admin Panel (Integrations > {bot})"
SECRET_SHAPE = "is malformed: expected at least 8 visible characters with no spaces (value not shown)"
APP_ID_SHAPE = "is malformed: expected the integration's numeric App ID"
URL_SHAPE = "is malformed: expected an http(s) URL such as https://graph.workplace.com, got {value!r}"
INT_SHAPE = "is malformed: expected a whole number from {low} to {high}, got {value!r}"
CHOICE_SHAPE = "is malformed: expected one of {choices}, got {value!r}"
UNKNOWN_BOTS = "names {names}, which no module in {package}/ defines (found: {found})"
SKIPPED_BOT = (
    "{bot}: not served: {error}. Fix: `flask bots provision {bot}` (or `bots provision {bot}`) creates its "
    "integration in the local Workplace and writes its settings into .env (`make run` does it when the module is "
    "saved); for a real Workplace, `flask bots manifest {bot}` says what to create in the Admin Panel, then copy its "
    "settings into .env"
)
SKIP_HINT = ("to start without the bots whose settings are missing, set MISSING_SETTINGS=skip (each is logged with its "
             "fix) or BOTS=<the names to serve>")
BROKEN_MODULE = "{module}: not served: importing it failed ({error}); fix the module and save it again"
DUPLICATE_BOT = "defines a bot named {name!r} twice ({first} and {second}): bot names must be unique"

UNMATCHED_EVENT = (
    "%s: no handler for %s; to handle it add to handlers/%s.py: %s def handle(event, ctx): ..."
)
UNKNOWN_TOPIC = "%s: acknowledged %s/%s, which this version does not model; it reaches @bot.on(%r, %r) handlers"
HANDLER_FAILED = "%s: handler %s failed on %s (%s)"
ERROR_HANDLER_FAILED = "%s: error handler %s failed too on %s"
DUPLICATE_SKIPPED = "%s: skipped a redelivered %s (dedupe key %s)"
INBOX_UNAVAILABLE = "the inbox could not store this delivery: answered 503 so Workplace retries it later"
INBOX_UNREACHABLE = "the inbox cannot be read (its SQLite file or Redis): deliveries are answered 503 until it is back"
THREADS_DIED = "{count} {kind} thread(s) of this process have died: restart it"
INBOX_STUCK = "the oldest due event or message has waited {waited:.1f} s (more than READY_MAX_AGE_SECONDS={limit:g})"
QUEUE_FULL = "the handler queue is full: answered 503 so Workplace retries this delivery later"
REJECTED = "%s: refused %s: %s %s"


def decorator_hint(event: Event) -> str:
    """The decorator a developer adds to handle ``event``, as code."""
    kind = type(event).__name__
    if kind == "Message":
        return "@bot.on_message()"
    if kind == "QuickReply":
        return f"@bot.on_quick_reply({event.payload!r})"
    if kind == "Postback":
        return f"@bot.on_postback({event.payload!r})"
    if kind == "Mention":
        return "@bot.on_mention"
    verb = getattr(event, "value", {}).get("verb") if isinstance(getattr(event, "value", None), dict) else None
    if verb:
        return f"@bot.on({event.object!r}, {event.field!r}, verb={verb!r})"
    return f"@bot.on({event.object!r}, {event.field!r})"

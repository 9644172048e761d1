"""``Bot``: the decorator registry a developer writes handlers against, and the bot's manifest.

A ``Bot`` only declares. Its settings are read when an app serves it, so importing a handlers
module never needs secrets, and one ``Bot`` can be served by several apps (as tests do).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from linkpreview.registry import Registration, domain_of

from . import matchers, messages
from .events import Event
from .matchers import Matcher

Handler = Callable[[Event, Any], Any]
Middleware = Callable[[Event, Any, Callable[[Event, Any], Any]], Any]
ErrorHandler = Callable[[BaseException, Event, Any], Any]
F = TypeVar("F", bound=Callable[..., Any])

NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
TOPICS = ("page", "group", "user", "workplace_security", "link")


@dataclass(frozen=True, slots=True)
class Listener:
    """One registered handler: which events it is offered (``kind``, topic) and what it wants of them."""

    kind: str
    handler: Handler
    matcher: Matcher
    object: str | None = None
    field: str | None = None

    def match(self, event: Event) -> Any:
        """The matcher's verdict on ``event`` (falsy: not for this handler)."""
        if self.object is not None and event.object != self.object:
            return None
        if self.field is not None and event.field != self.field:
            return None
        return self.matcher(event)

    @property
    def name(self) -> str:
        return getattr(self.handler, "__qualname__", repr(self.handler))


class Bot:
    """A Workplace integration: its handlers, middleware, error handlers and manifest.

    ``name`` is lower-case (``helpdesk``); its upper-cased form prefixes the bot's settings
    (``HELPDESK_APP_SECRET``) and it names the webhook URL (``/webhooks/helpdesk``).
    """

    def __init__(self, name: str, *, description: str = "", discoverable: bool = False, ignore_self: bool = True,
                 get_started: str | None = None, greeting: str | None = None,
                 menu: Sequence[dict] | None = None, permissions: Sequence[str] = ()) -> None:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ValueError(f"bot name {name!r} must be lower-case letters, digits and _, starting with a letter "
                             "(it prefixes the settings: helpdesk -> HELPDESK_APP_SECRET)")
        self.name = name
        self.description = description
        self.discoverable = discoverable
        self.ignore_self = ignore_self
        self.get_started = get_started
        self.greeting = greeting
        self.menu = list(menu or [])
        self.extra_permissions = tuple(permissions)
        self.listeners: list[Listener] = []
        self.middlewares: list[Middleware] = []
        self.error_handlers: list[ErrorHandler] = []
        self.link_previews: list[Registration] = []
        self.link_collection_handler: Callable[[Any], Any] | None = None
        self._runtime: Any = None

    def __repr__(self) -> str:
        return f"<Bot {self.name!r} with {len(self.listeners)} handlers>"

    def on_message(self, text: str | re.Pattern | Callable[[Event], Any] | None = None) -> Callable[[F], F]:
        """Handle chat messages whose text matches ``text`` (a regex searched in it, or a predicate).

        Without ``text`` every message matches. A regex match reaches the handler as ``ctx.match``.
        """
        return self._register("message", matchers.text(text))

    def on_postback(self, payload: str | re.Pattern | Callable[[Event], Any] | None = None) -> Callable[[F], F]:
        """Handle button, menu and Get Started taps by payload: exact string, compiled regex, or predicate."""
        return self._register("postback", matchers.payload(payload))

    def on_quick_reply(self, payload: str | re.Pattern | Callable[[Event], Any] | None = None) -> Callable[[F], F]:
        """Handle quick-reply taps by payload; unmatched taps fall through to ``on_message`` handlers."""
        return self._register("quick_reply", matchers.payload(payload))

    def on_mention(self, handler: F | None = None, *, when: Callable[[Event], Any] | None = None) -> Any:
        """Handle @-mentions of the bot in group posts and comments; usable bare or called."""
        register = self._register("mention", matchers.as_matcher(when) if when else matchers.text())
        return register(handler) if handler is not None else register

    def on(self, object: str, field: str | None = None, *, when: Callable[[Event], Any] | None = None,
           **filters: Any) -> Callable[[F], F]:
        """Handle any topic/field of PROTOCOL.md, such as ``on("group", "comments", verb="add")``.

        ``filters`` compare keys of the change's value (or event attributes) with an exact value,
        a compiled regex or a predicate; ``when`` is a predicate on the whole event.
        """
        if object not in TOPICS:
            raise ValueError(f"unknown webhook object {object!r}: expected one of {', '.join(TOPICS)}")
        matcher = matchers.value_filters(filters)
        if when is not None:
            matcher = matcher & when
        return self._register("any", matcher, object, field)

    def link_preview(self, domain: str, path: str | re.Pattern | None = None, *, fetch: bool = False,
                     headers: dict[str, str] | None = None) -> Any:
        """Answer link-preview requests for ``domain`` (and its subdomains), optionally only for paths
        matching ``path`` (a regex searched in the URL path; named groups reach ``request.match``).

        As a decorator it registers a resolver ``(request) -> Preview | None``; with ``fetch=True``
        it registers the OpenGraph fetcher instead (called, not used as a decorator).
        """
        pattern = re.compile(path) if isinstance(path, str) else path
        canonical = domain_of(domain)
        if fetch:
            self.link_previews.append(Registration(self.name, canonical, pattern, None, True,
                                                   tuple(sorted((headers or {}).items()))))
            return None

        def decorator(resolver: F) -> F:
            self.link_previews.append(Registration(self.name, canonical, pattern, resolver))
            return resolver
        return decorator

    def link_collection(self, resolver: F) -> F:
        """Offer documents in the composer's share extension: ``resolver(request) -> list[Preview]``."""
        self.link_collection_handler = resolver
        return resolver

    def middleware(self, func: F) -> F:
        """Wrap every handler of this bot: ``func(event, ctx, call_next)``; call ``call_next(event, ctx)`` to go on."""
        self.middlewares.append(func)
        return func

    def error_handler(self, func: F) -> F:
        """Called as ``func(error, event, ctx)`` when a handler raises; the webhook still answers 200."""
        self.error_handlers.append(func)
        return func

    @property
    def graph(self) -> Any:
        """The bot's Graph API calls outside a handler (``bot.graph.send("Hi", to=user_id)``).

        Uses the app that served this bot last (one app serves it in a deployment).
        """
        if self._runtime is not None:
            return self._runtime.graph
        raise RuntimeError(f"bot {self.name!r} is not served yet: bot.graph works once create_app() (or a "
                           "BotTester) has read its settings")

    def served_by(self, runtime: Any) -> None:
        """Called by the app that serves this bot, so ``bot.graph`` can find its settings."""
        self._runtime = runtime

    def profile(self) -> dict:
        """The Messenger profile this bot declares (``/me/messenger_profile``), checked; {} if none."""
        return messages.profile(self.get_started, self.greeting, self.menu)

    def match(self, event: Event) -> tuple[Listener, Any] | None:
        """The first listener that wants ``event`` and its matcher's result.

        Listeners of the event's most specific kind are tried first, each kind in registration order.
        """
        for kind in event.kinds:
            for listener in self.listeners:
                if listener.kind == kind and (found := listener.match(event)):
                    return listener, found
        return None

    def subscriptions(self) -> dict[str, set[str]]:
        """The webhook topics and fields this bot's handlers need, as ``{object: {fields}}``."""
        needed: dict[str, set[str]] = {}
        implied = {"message": ("page", "messages"), "quick_reply": ("page", "messages"),
                   "postback": ("page", "messaging_postbacks"), "mention": ("page", "mention")}
        for listener in self.listeners:
            object, field = implied.get(listener.kind, (listener.object, listener.field))
            fields = needed.setdefault(object, set())
            if field:
                fields.add(field)
        if self.link_previews:
            needed.setdefault("link", set()).add("preview")
        if self.link_collection_handler:
            needed.setdefault("link", set()).add("collection")
        return needed

    def _register(self, kind: str, matcher: Matcher, object: str | None = None,
                  field: str | None = None) -> Callable[[F], F]:
        def decorator(handler: F) -> F:
            if not callable(handler):
                raise TypeError(f"@bot decorators take a function (event, ctx), got {handler!r}")
            self.listeners.append(Listener(kind, handler, matcher, object, field))
            return handler
        return decorator

"""``Bot``: the decorator registry a developer writes handlers against, and the bot's manifest.

A ``Bot`` only declares. Its settings are read when an app serves it, so importing a handlers
module never needs secrets, and one ``Bot`` can be served by several apps (as tests do).
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from linkpreview.registry import Registration, Resolver, domain_of
from linkpreview.service import CollectionResolver

from . import matchers, messages
from .context import Context
from .events import Event, Mention, Message, Postback, QuickReply
from .matchers import Matcher, Predicate

if TYPE_CHECKING:
    from .actions import Actions
    from .runtime import BotRuntime

#: The event type a handler takes.
E = TypeVar("E", bound=Event)
#: A handler: ``handler(event, ctx)``; what it returns is ignored.
Handler = Callable[[E, Context], object]
#: ``call_next(event, ctx)`` as a middleware receives it.
Next = Callable[[Event, Context], object]
Middleware = Callable[[Event, Context, Next], object]
ErrorHandler = Callable[[BaseException, Event, Context], object]

# Each decorator returns the function it registers, unchanged, typed as the events it delivers.
AnyHandlerT = TypeVar("AnyHandlerT", bound=Handler[Event])
MessageHandlerT = TypeVar("MessageHandlerT", bound=Handler[Message])
QuickReplyHandlerT = TypeVar("QuickReplyHandlerT", bound=Handler[QuickReply])
PostbackHandlerT = TypeVar("PostbackHandlerT", bound=Handler[Postback])
MentionHandlerT = TypeVar("MentionHandlerT", bound=Handler[Mention])
H = TypeVar("H", bound=Callable[..., object])
MiddlewareT = TypeVar("MiddlewareT", bound=Middleware)
ErrorHandlerT = TypeVar("ErrorHandlerT", bound=ErrorHandler)
ResolverT = TypeVar("ResolverT", bound=Resolver)
CollectionResolverT = TypeVar("CollectionResolverT", bound=CollectionResolver)

NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
TOPICS = ("page", "group", "user", "workplace_security", "link")


@dataclass(frozen=True, slots=True)
class Listener:
    """One registered handler: which events it is offered (``kind``, topic) and what it wants of them."""

    kind: str
    handler: Handler[Event]
    matcher: Matcher
    object: str | None = None
    field: str | None = None

    def match(self, event: Event) -> builtins.object:
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
                 menu: Sequence[dict[str, Any]] | None = None, permissions: Sequence[str] = ()) -> None:
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
        self.link_collection_handler: CollectionResolver | None = None
        self._runtime: BotRuntime | None = None
        #: Where the bot's handlers log (``ctx.logger``): ``bots.<name>``.
        self.logger = logging.getLogger(f"bots.{name}")

    def __repr__(self) -> str:
        return f"<Bot {self.name!r} with {len(self.listeners)} handlers>"

    def on_message(self, text: str | re.Pattern[str] | Predicate | None = None
                   ) -> Callable[[MessageHandlerT], MessageHandlerT]:
        """Handle chat messages whose text matches ``text`` (a regex searched in it, or a predicate).

        Without ``text`` every message matches. A regex match reaches the handler as ``ctx.match``.
        """
        return self._register("message", matchers.text(text))

    def on_postback(self, payload: str | re.Pattern[str] | Predicate | None = None
                    ) -> Callable[[PostbackHandlerT], PostbackHandlerT]:
        """Handle button, menu and Get Started taps by payload: exact string, compiled regex, or predicate."""
        return self._register("postback", matchers.payload(payload))

    def on_quick_reply(self, payload: str | re.Pattern[str] | Predicate | None = None
                       ) -> Callable[[QuickReplyHandlerT], QuickReplyHandlerT]:
        """Handle quick-reply taps by payload; unmatched taps fall through to ``on_message`` handlers."""
        return self._register("quick_reply", matchers.payload(payload))

    @overload
    def on_mention(self, handler: MentionHandlerT, *, when: Predicate | None = None) -> MentionHandlerT: ...

    @overload
    def on_mention(self, handler: None = None, *, when: Predicate | None = None
                   ) -> Callable[[MentionHandlerT], MentionHandlerT]: ...

    def on_mention(self, handler: MentionHandlerT | None = None, *, when: Predicate | None = None
                   ) -> MentionHandlerT | Callable[[MentionHandlerT], MentionHandlerT]:
        """Handle @-mentions of the bot in group posts and comments; usable bare or called."""
        register: Callable[[MentionHandlerT], MentionHandlerT] = self._register(
            "mention", matchers.as_matcher(when) if when else matchers.text())
        return register(handler) if handler is not None else register

    def on(self, object: str, field: str | None = None, *, when: Predicate | None = None,
           **filters: builtins.object) -> Callable[[AnyHandlerT], AnyHandlerT]:
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

    @overload
    def link_preview(self, domain: str, path: str | re.Pattern[str] | None = None, *, fetch: Literal[False] = False,
                     headers: dict[str, str] | None = None) -> Callable[[ResolverT], ResolverT]: ...

    @overload
    def link_preview(self, domain: str, path: str | re.Pattern[str] | None = None, *, fetch: Literal[True],
                     headers: dict[str, str] | None = None) -> None: ...

    def link_preview(self, domain: str, path: str | re.Pattern[str] | None = None, *, fetch: bool = False,
                     headers: dict[str, str] | None = None) -> Callable[[ResolverT], ResolverT] | None:
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

        def decorator(resolver: ResolverT) -> ResolverT:
            self.link_previews.append(Registration(self.name, canonical, pattern, resolver))
            return resolver
        return decorator

    def link_collection(self, resolver: CollectionResolverT) -> CollectionResolverT:
        """Offer documents in the composer's share extension: ``resolver(request) -> list[Preview]``."""
        self.link_collection_handler = resolver
        return resolver

    def middleware(self, func: MiddlewareT) -> MiddlewareT:
        """Wrap every handler of this bot: ``func(event, ctx, call_next)``; call ``call_next(event, ctx)`` to go on."""
        self.middlewares.append(func)
        return func

    def error_handler(self, func: ErrorHandlerT) -> ErrorHandlerT:
        """Called as ``func(error, event, ctx)`` when a handler raises; the webhook still answers 200."""
        self.error_handlers.append(func)
        return func

    @property
    def graph(self) -> Actions:
        """The bot's Graph API calls outside a handler (``bot.graph.send("Hi", to=user_id)``).

        Uses the app that served this bot last (one app serves it in a deployment).
        """
        if self._runtime is not None:
            return self._runtime.graph
        raise RuntimeError(f"bot {self.name!r} is not served yet: bot.graph works once create_app() (or a "
                           "BotTester) has read its settings")

    def served_by(self, runtime: BotRuntime) -> None:
        """Called by the app that serves this bot, so ``bot.graph`` can find its settings."""
        self._runtime = runtime

    def profile(self) -> dict[str, Any]:
        """The Messenger profile this bot declares (``/me/messenger_profile``), checked; {} if none."""
        return messages.profile(self.get_started, self.greeting, self.menu)

    def match(self, event: Event) -> tuple[Listener, object] | None:
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
            if object is None:  # only ``on(object, ...)`` makes listeners of no implied topic, and it names one
                continue
            fields = needed.setdefault(object, set())
            if field:
                fields.add(field)
        if self.link_previews:
            needed.setdefault("link", set()).add("preview")
        if self.link_collection_handler:
            needed.setdefault("link", set()).add("collection")
        return needed

    def _register(self, kind: str, matcher: Matcher, object: str | None = None,
                  field: str | None = None) -> Callable[[H], H]:
        def decorator(handler: H) -> H:
            if not callable(handler):
                raise TypeError(f"@bot decorators take a function (event, ctx), got {handler!r}")
            # Only events of ``kind`` reach a listener, and its decorator typed the handler for them.
            self.listeners.append(Listener(kind, cast("Handler[Event]", handler), matcher, object, field))
            return handler
        return decorator

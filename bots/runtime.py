"""A ``Bot`` as one app serves it: the declaration joined with its settings and its Graph client."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import requests

from . import metrics
from .actions import Actions
from .bot import Bot
from .config import BotSettings, ServerSettings
from .events import Event, Message
from .graph import GraphClient, RetryPolicy
from .stats import Stats


@dataclass
class BotRuntime:
    """Everything needed to verify, route and answer for one bot in one app."""

    bot: Bot
    settings: BotSettings
    client: GraphClient
    #: Ids the bot itself posts as (its page), learned from page entries; its own events are skipped.
    own_ids: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, bot: Bot, settings: BotSettings, server: ServerSettings, stats: Stats,
              session: requests.Session | None = None) -> BotRuntime:
        retry = RetryPolicy(attempts=server.graph_retry_attempts, base_delay=server.graph_retry_base_ms / 1000)
        client = GraphClient(server.graph_api_url, settings.access_token, settings.app_secret,
                             proof=settings.appsecret_proof, timeout=server.graph_timeout_seconds, session=session,
                             retry=retry, on_call=partial(stats.record, bot.name),
                             on_answer=partial(metrics.graph_call, bot.name),
                             on_retry=partial(metrics.retried, bot.name, "graph"))
        runtime = cls(bot, settings, client)
        bot.served_by(runtime)
        return runtime

    @property
    def graph(self) -> Actions:
        """The bot's Graph API calls, for use outside a handler."""
        return Actions(self.client)

    def learn(self, object: str, entry_id: str | None) -> None:
        """A page entry's id is the bot's own page: remember it to recognise the bot's own posts."""
        if object == "page" and entry_id:
            self.own_ids.add(entry_id)

    def is_own(self, event: Event) -> bool:
        """True for the bot's own messages and posts: echoes, or a sender that is the bot's page."""
        if isinstance(event, Message) and event.is_echo:
            return True
        return event.sender_id is not None and event.sender_id in self.own_ids

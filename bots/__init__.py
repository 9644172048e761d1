"""A framework for Workplace custom integrations: verify webhooks, route events, answer through Graph.

Write a bot::

    from bots import Bot

    bot = Bot("helpdesk", description="IT helpdesk")

    @bot.on_message(r"^help\\b")
    def show_help(event, ctx):
        ctx.reply("What do you need?", quick_replies=[("Printer", "PRINTER")])
"""

__version__ = "0.1.0"

from linkpreview import Preview, PreviewRequest

from .bot import Bot, Listener
from .context import Context
from .errors import ConfigError, GraphError, WebhookError
from .events import (
    Attachment,
    Change,
    Delivery,
    Event,
    GroupComment,
    GroupPost,
    LinkRequest,
    Membership,
    Mention,
    Message,
    MessagingEvent,
    Postback,
    QuickReply,
    Read,
    SecurityEvent,
    UserChange,
)
from .graph import GraphClient
from .matchers import Matcher, direct, in_group_chat, payload, text
from .refs import Ref, UnresolvedRef
from .router import Outcome, Status

__all__ = [
    "Attachment",
    "Bot",
    "Change",
    "ConfigError",
    "Context",
    "Delivery",
    "Event",
    "GraphClient",
    "GraphError",
    "GroupComment",
    "GroupPost",
    "LinkRequest",
    "Listener",
    "Matcher",
    "Membership",
    "Mention",
    "Message",
    "MessagingEvent",
    "Outcome",
    "Postback",
    "Preview",
    "PreviewRequest",
    "QuickReply",
    "Read",
    "Ref",
    "SecurityEvent",
    "Status",
    "UnresolvedRef",
    "UserChange",
    "WebhookError",
    "direct",
    "in_group_chat",
    "payload",
    "text",
]

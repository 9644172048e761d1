"""The webhook endpoint without a web framework: bytes and headers in, a status and JSON out.

Order of checks for a delivery: known bot and topic (404) → size (413) → signature over the raw
bytes (403) → JSON, its depth and the envelope (400) → hand the items over (503 when there is no room) → 200.
A ``link`` delivery is the exception: it is answered at once, with the preview in the body.
The Flask blueprint, the test kit and the benchmarks all drive this one class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from . import notices, signature
from .bot import TOPICS
from .envelope import MAX_DEPTH, Item, parse
from .errors import WebhookError
from .runtime import BotRuntime

logger = logging.getLogger("bots")

Accept = Callable[[str, Sequence[Item], bytes], bool]
AnswerLink = Callable[[str, Item], Mapping[str, object]]


@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer: a status, a JSON body (or plain text for the handshake) and extra headers."""

    status: int
    body: Mapping[str, object] | str
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """Verifies and accepts deliveries for the bots one app serves."""

    def __init__(self, runtimes: Mapping[str, BotRuntime], accept: Accept, max_body_bytes: int = 1024 * 1024,
                 answer_link: AnswerLink | None = None, max_depth: int = MAX_DEPTH) -> None:
        self.runtimes = runtimes
        self.max_depth = max_depth
        self.accept = accept
        self.max_body_bytes = max_body_bytes
        self.answer_link = answer_link

    def handshake(self, bot_name: str, topic: str | None, args: Mapping[str, str]) -> Reply:
        """Answer Workplace's subscription check: the bare challenge, or 403."""
        try:
            runtime = self._runtime(bot_name, topic)
            if args.get("hub.mode") != "subscribe":
                raise WebhookError(403, "hub.mode must be 'subscribe'", "hub.mode")
            if not signature.tokens_equal(args.get("hub.verify_token"), runtime.settings.verify_token):
                raise WebhookError(403, "hub.verify_token does not match this bot's verify token", "hub.verify_token")
            challenge = args.get("hub.challenge")
            if challenge is None:
                raise WebhookError(400, "hub.challenge is missing", "hub.challenge")
        except WebhookError as error:
            return _refuse(bot_name, "a subscription handshake", error)
        return Reply(200, challenge)

    def deliver(self, bot_name: str, topic: str | None, body: bytes, headers: signature.Headers,
                remote: str | None = None) -> Reply:
        """Check a POSTed delivery and hand its items to ``accept``; every refusal is a JSON error."""
        try:
            runtime = self._runtime(bot_name, topic)
            if len(body) > self.max_body_bytes:
                raise WebhookError(413, f"body is larger than {self.max_body_bytes} bytes")
            signature.verify(body, headers, runtime.settings.secrets)
            object, items = parse(body, self.max_depth)
            if topic is not None and object != topic:
                raise WebhookError(400, f"object {object!r} was delivered to the {topic!r} callback URL", "object")
            if object == "link" and self.answer_link is not None:
                if len(items) != 1:
                    raise WebhookError(400, "a link delivery holds exactly one entry with one change", "entry")
                return Reply(200, self.answer_link(bot_name, items[0]))
            if items and not self.accept(bot_name, items, body):
                logger.warning(notices.QUEUE_FULL)
                raise WebhookError(503, notices.QUEUE_FULL)
        except WebhookError as error:
            return _refuse(bot_name, f"a delivery from {remote or '?'}", error)
        return Reply(200, {"received": len(items)})

    def _runtime(self, bot_name: str, topic: str | None) -> BotRuntime:
        runtime = self.runtimes.get(bot_name)
        if runtime is None:
            raise WebhookError(404, f"no bot named {bot_name!r} is served here", "bot")
        if topic is not None and topic not in TOPICS:
            raise WebhookError(404, f"unknown topic {topic!r}: expected one of {', '.join(TOPICS)}", "topic")
        return runtime


def _refuse(bot_name: str, source: str, error: WebhookError) -> Reply:
    logger.warning(notices.REJECTED, bot_name, source, error.status, error.message)
    headers = {"Retry-After": "5"} if error.status == 503 else {}
    return Reply(error.status, error.to_dict(), headers)

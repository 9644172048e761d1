"""Log lines an operator can keep: readable text or one JSON object per line, never forged, never a secret.

Request-supplied values (a bot name from the URL, a header, an exception's text) may hold newlines or
other control characters; the text format escapes them in the message and indents every further line
of a record (tracebacks), so no line of a record can pass for a line of its own. The JSON format lets
the encoder escape. Event lines carry ``bot``, ``event``, ``delivery``, ``outcome`` and
``duration_ms`` as ``extra`` fields, which the JSON format writes as keys.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

#: The extra fields of a record the JSON format writes out, when the record has them.
FIELDS = ("bot", "event", "delivery", "outcome", "duration_ms", "method", "path", "status", "bytes", "remote")
#: Query parameters whose values are safe in an access log; every other value is redacted.
SAFE_PARAMETERS = frozenset({"hub.mode"})
REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def escape(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``): one line, whatever it held."""
    return _CONTROL.sub(_escaped, text) if _CONTROL.search(text) else text


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return named.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def redact_query(query: str) -> str:
    """A query string with every value but the safe ones (``hub.mode``) replaced by ``[redacted]``: the
    handshake's ``hub.verify_token`` never reaches a log."""
    if not query:
        return query
    parts = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        parts.append(pair if not equals or name in SAFE_PARAMETERS else f"{name}={REDACTED}")
    return "&".join(parts)


def redact_uri(uri: str) -> str:
    """A request URI with its query redacted (see :func:`redact_query`)."""
    path, mark, query = uri.partition("?")
    return f"{path}{mark}{redact_query(query)}"


def quote_path(path: str) -> str:
    """A decoded URL path as it can stand in a log: percent-encoded again where it holds odd characters."""
    return quote(path, safe="/:@!$&'()*+,;=-._~")


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, the message escaped and any further lines indented with ``  | ``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return "\n  | ".join(super().format(record).splitlines())


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the event
    fields present on the record, and ``exception`` (the traceback as one string) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _iso(record.created), "level": record.levelname, "logger": record.name,
                                "message": record.getMessage()}
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


def formatter(kind: str) -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` names: ``json`` or (anything else) ``text``."""
    return JSONFormatter() if kind == "json" else TextFormatter()


def configure(level: str, kind: str = "text", names: Iterable[str] = ("bots", "linkpreview")) -> None:
    """Send the framework's log lines to stderr in ``kind``'s format, unless the host (gunicorn's config, pytest)
    has set up logging; set ``level`` either way."""
    level = level.upper() if level.upper() in logging.getLevelNamesMapping() else "INFO"
    for name in names:
        framework = logging.getLogger(name)
        framework.setLevel(level)
        if logging.getLogger().handlers:
            continue
        ours = [handler for handler in framework.handlers if getattr(handler, "_bots", False)]
        if framework.handlers and not ours:
            continue
        handler = ours[0] if ours else logging.StreamHandler()
        handler.setFormatter(formatter(kind))
        handler._bots = True  # type: ignore[attr-defined]  # our mark on a stdlib handler, found again above
        if not ours:
            framework.addHandler(handler)

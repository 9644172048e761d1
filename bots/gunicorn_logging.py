"""Gunicorn's own log lines and refusals in the project's terms (``gunicorn.conf.py`` installs both).

:class:`Logger` is gunicorn's logger with the access log made safe to keep: the query's values are
redacted (the handshake carries ``hub.verify_token``), secret headers never appear, every value is
escaped, and ``LOG_FORMAT=json`` turns both the access and the error log into one JSON object per
line. :func:`write_error` answers what gunicorn refuses before the app sees it (a request line too
long, a malformed header or chunk) with the JSON error body the app uses, as a 4xx.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gunicorn import glogging

from . import logs

if TYPE_CHECKING:
    from gunicorn.config import Config
    from gunicorn.http import Request
    from gunicorn.http.wsgi import Response

#: Request headers whose values never reach a log line, whatever ``access_log_format`` asks for.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-hub-signature",
                            "x-hub-signature-256", "x-admin-token"})
#: Gunicorn answers an unsupported ``Transfer-Encoding`` with 501; it is the sender's fault, so 400.
CLIENT_STATUSES = {501: (400, "Bad Request")}


class Logger(glogging.Logger):
    """Gunicorn's logger, redacted and escaped; JSON lines when ``LOG_FORMAT=json``."""

    def setup(self, cfg: Config) -> None:
        super().setup(cfg)
        self.json = log_format() == "json"
        if self.json:
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(logs.JSONFormatter())
        else:
            for handler in self.error_log.handlers:
                handler.setFormatter(_EscapedFormatter(self.error_fmt, self.datefmt))

    # The stub types the atoms as a TypedDict of the fixed keys only; gunicorn also gives one per header and
    # environment variable ("{name}i", "{name}o", "{name}e"), which this method leaves out or escapes.
    def atoms(self, resp: Response, req: Request, environ: MutableMapping[str, Any],  # type: ignore[override]
              request_time: timedelta) -> dict[str, Any]:
        """Gunicorn's atoms with the query redacted, secret headers and the raw environment left out, and every
        value escaped."""
        atoms: dict[str, Any] = dict(super().atoms(resp, req, environ, request_time))
        method, protocol = environ.get("REQUEST_METHOD", "-"), environ.get("SERVER_PROTOCOL", "-")
        atoms["r"] = f"{method} {logs.redact_uri(environ.get('RAW_URI', ''))} {protocol}"
        atoms["q"] = logs.redact_query(environ.get("QUERY_STRING", ""))
        atoms["U"] = logs.quote_path(environ.get("PATH_INFO", ""))
        for key in list(atoms):
            if key.endswith("}e") or (key.endswith("}i") and key[1:-2] in SECRET_HEADERS):
                del atoms[key]
        return {key: logs.escape(value) if isinstance(value, str) else value for key, value in atoms.items()}

    def access(self, resp: Response, req: Request, environ: MutableMapping[str, Any], request_time: timedelta) -> None:
        """The access line; in JSON, its parts as fields rather than the Apache-style text."""
        if not self.json:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        path = atoms["U"] + (f"?{atoms['q']}" if atoms["q"] else "")
        self.access_log.info("%s %s %s", atoms["m"], path, atoms["s"], extra={
            "method": atoms["m"], "path": path, "status": _int(atoms["s"]), "bytes": atoms["B"],
            "duration_ms": round(request_time.total_seconds() * 1000, 3), "remote": atoms["h"]})


class _EscapedFormatter(logging.Formatter):
    """Gunicorn's error-log format with the message escaped (it quotes request lines and header names)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = logs.escape(record.message)
        return super().formatMessage(record)


def log_format() -> str:
    """``LOG_FORMAT`` from the environment, else from ``.env`` in the working directory (as the app reads it)."""
    value = os.environ.get("LOG_FORMAT")
    if value is None and os.environ.get("DOTENV", "1") not in ("0", "false", "no") and os.path.exists(".env"):
        from dotenv import dotenv_values

        value = dotenv_values(".env").get("LOG_FORMAT")
    return (value or "text").strip().lower()


def write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """What gunicorn refuses, answered as the app answers: ``{"error": {"message": ...}}``, never a 5xx for
    something the sender did (``gunicorn.util.write_error``'s signature)."""
    from gunicorn import util

    status_int, reason = CLIENT_STATUSES.get(status_int, (status_int, reason))
    body = json.dumps({"error": {"message": mesg or reason}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value

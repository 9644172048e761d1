"""The webhook delivery as plain WSGI: a POST to ``<prefix>/<bot>`` or ``<prefix>/<bot>/<topic>`` goes straight
to the :class:`~bots.receiver.Receiver`, without a web framework's request machinery.

A delivery is the one request a bot server gets many of, and a framework's request and response objects,
URL map and hooks cost more CPU than verifying, parsing and storing the delivery itself. So the Flask
extension mounts :class:`Deliveries` in front of the Flask app: an ordinary delivery (to a bot served
here, with a ``Content-Length`` within the limit and a plain ASCII path) is answered here; everything
else (the handshake, unknown bots, chunked or oversized bodies, odd paths, every other URL) goes on to
Flask, which answers it as before. Both ways end in the same ``Receiver.deliver`` and the same metrics;
what a client sees is the same.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol

from . import metrics
from .receiver import Receiver, Reply

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_encode = json.JSONEncoder(separators=(",", ":")).encode
#: The message a body shorter than its ``Content-Length`` gets, as the Flask route words it.
CUT_SHORT = "the body ended before the length its headers promised (Content-Length or chunked)"


class Deliveries:
    """WSGI middleware: answers ordinary webhook deliveries from ``receiver()``, hands every other request to
    ``app``. ``receiver`` is called per request, so a deployment built after the middleware is found."""

    def __init__(self, app: WSGIApplication, receiver: Callable[[], Receiver], prefix: str = "/webhooks") -> None:
        self.app = app
        self.receiver = receiver
        self.prefix = prefix.rstrip("/") + "/"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        receiver = self.receiver()
        route = self._route(environ, receiver)
        if route is None:
            return self.app(environ, start_response)
        bot, topic, length = route
        body = _read(environ["wsgi.input"], length)
        if isinstance(body, Reply):
            reply = body
        else:
            reply = receiver.deliver(bot, topic, body, Headers(environ), environ.get("REMOTE_ADDR"))
        metrics.delivered(bot, reply.status)
        return _respond(reply, start_response)

    def _route(self, environ: WSGIEnvironment, receiver: Receiver) -> tuple[str, str | None, int] | None:
        """Bot, topic and body length of an ordinary delivery to a bot served here; None for anything the
        framework should answer (an app's own route under the prefix included)."""
        path: str = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(self.prefix) or not path.isascii():
            return None
        if "HTTP_TRANSFER_ENCODING" in environ:
            return None
        length: str = environ.get("CONTENT_LENGTH", "")
        if not length.isdigit() or int(length) > receiver.max_body_bytes:
            return None
        parts = path[len(self.prefix):].split("/")
        if len(parts) > 2 or "" in parts or parts[0] not in receiver.runtimes:
            return None
        return parts[0], parts[1] if len(parts) == 2 else None, int(length)


class Stream(Protocol):
    """What a WSGI server gives as ``wsgi.input``, as far as a delivery is read from it."""

    def read(self, size: int, /) -> bytes: ...


class Headers:
    """A request's headers as :func:`bots.signature.verify` reads them, straight from the WSGI environ."""

    __slots__ = ("environ",)

    def __init__(self, environ: WSGIEnvironment) -> None:
        self.environ = environ

    def get(self, key: str, /) -> str | None:
        value = self.environ.get("HTTP_" + key.upper().replace("-", "_"))
        return value if isinstance(value, str) else None


def _read(stream: Stream, length: int) -> bytes | Reply:
    """The whole body of ``length`` bytes, or the 400 to answer when it ends early or cannot be read; a
    disconnect (``OSError``) is left to the server."""
    read = stream.read
    chunks, left = [], length
    try:
        while left > 0:
            chunk = read(left)
            if not chunk:
                return Reply(400, {"error": {"message": CUT_SHORT}})
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:
        raise
    except Exception as error:
        return Reply(400, {"error": {"message": f"the request body could not be read: {describe(error)}"}})
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def describe(error: Exception) -> str:
    """A server's read error in one short line, its class name when it gives none (never the body itself)."""
    text = " ".join(str(error).split())[:120]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _respond(reply: Reply, start_response: StartResponse) -> list[bytes]:
    """Start the response for ``reply``: its JSON (or, for text, plain) body with its extra headers."""
    if isinstance(reply.body, str):
        body, kind = reply.body.encode(), "text/plain; charset=utf-8"
    else:
        body, kind = _encode(reply.body).encode(), "application/json"
    start_response(_status_line(reply.status), [("Content-Type", kind), ("Content-Length", str(len(body))),
                                                        *reply.headers.items()])
    return [body]


@functools.cache
def _status_line(status: int) -> str:
    """``200 OK`` for 200: the status line WSGI wants."""
    return f"{status} {HTTPStatus(status).phrase}"

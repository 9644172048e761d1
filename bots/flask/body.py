"""WSGI middleware that turns a request body the server cannot parse into a 400, not a 500.

A WSGI server decodes ``Transfer-Encoding: chunked`` while the app reads ``wsgi.input``, so a bad chunk
size or a missing terminator surfaces as the server's own exception (gunicorn's ``InvalidChunkSize``,
``NoMoreData``) in the middle of a view. Wrapping the stream names the problem in a JSON 400 on every
route, whatever the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, TypeVar

from werkzeug.exceptions import BadRequest

from ..wsgi import describe

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

T = TypeVar("T")


class Stream(Protocol):
    """What a WSGI server gives as ``wsgi.input`` (PEP 3333)."""

    def read(self, size: int | None = ..., /) -> bytes: ...

    def readline(self, size: int | None = ..., /) -> bytes: ...

    def readlines(self, hint: int | None = ..., /) -> list[bytes]: ...


class BodyErrors:
    """Wraps ``wsgi.input`` of each request in a :class:`GuardedInput`."""

    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = GuardedInput(stream)
        return self.wsgi_app(environ, start_response)


class GuardedInput:
    """A request stream whose read errors, other than a disconnect (``OSError``), are a :class:`BadRequest`."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def read(self, size: int | None = -1) -> bytes:
        return self._guard(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guard(self._stream.readline, size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._guard(self._stream.readlines, hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    @staticmethod
    def _guard(read: Callable[[int | None], T], size: int | None) -> T:
        try:
            return read(size)
        except (OSError, BadRequest):
            raise
        except Exception as error:
            raise BadRequest(f"the request body could not be read: {describe(error)}") from None

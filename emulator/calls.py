"""What every Graph endpoint shares: the authorised call, the refusal (a Graph-shaped error), the
record of accepted calls, and lookups that refuse with the Graph error Workplace would send.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, jsonify

from .integrations import Integration

if TYPE_CHECKING:
    from .app import Emulator


class GraphError(Exception):
    """A refusal, answered as ``{"error": {...}}`` with an HTTP status."""

    def __init__(self, message: str, code: int, status: int = 400, subcode: int | None = None,
                 type: str = "OAuthException", integration: Integration | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.status, self.subcode, self.type = message, code, status, subcode, type
        #: the integration a refused call is counted for, when the call names one
        self.integration = integration

    def response(self) -> Response:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code,
                                 "fbtrace_id": "Aemulator"}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        answer = jsonify({"error": error})
        answer.status_code = self.status
        return answer


def graph_error(message: str, code: int, status: int = 400) -> Response:
    """A response shaped like a Graph API error."""
    return GraphError(message, code, status).response()


class Recorder:
    """Every accepted call, in order, for ``GET /_emulator/calls``."""

    def __init__(self, limit: int = 50_000) -> None:
        self.calls: list[dict[str, Any]] = []
        self.limit = limit
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, integration: str, method: str, path: str, body: Any) -> int:
        with self._lock:
            n = next(self._ids)
            if len(self.calls) < self.limit:
                self.calls.append({"n": n, "integration": integration, "method": method, "path": path, "body": body})
            return n


@dataclass
class Call:
    """One authorised call: who makes it, the path without its version, the parameters."""

    integration: Integration
    method: str
    path: str
    body: dict[str, Any]


#: A Graph endpoint: the authorised call and the path's groups in, the JSON answer out.
Handler = Callable[[Call, list[str]], dict[str, Any]]
#: The permission a route needs: one, any of several (a tuple), or none.
Permission = str | tuple[str, ...] | None


def state() -> Emulator:
    """The emulator this app serves."""
    from .app import emulator_of  # the app module imports this one

    return emulator_of(current_app)


def need(value: Any, name: str) -> Any:
    """``value``, or the code-100 refusal naming the missing parameter."""
    if value in (None, "", [], {}):
        raise GraphError(f"(#100) The parameter {name} is required", 100)
    return value


def names(value: Any, name: str) -> list[str]:
    """A list of names given as ``a,b`` or as a list of strings (JSON or bracket form); refused (100) otherwise."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return value
    raise GraphError(f"(#100) {name} must be a comma-separated list of names", 100)


def find_person(person_id: str) -> dict[str, Any]:
    """The person a bot addresses (a guest is made for an unknown id); refused when not a person's id or
    when the person has left (551, as Workplace answers)."""
    if not person_id.isdigit():
        raise GraphError(f"(#100) No matching user found for {person_id!r}", 100, subcode=2018001)
    person = state().community.welcome(person_id)
    if not person.get("active"):
        raise GraphError("(#551) This person isn't available right now.", 551)
    return person


def find_item(item_id: str, kind: str) -> dict[str, Any]:
    """The post or comment ``item_id``, or the unknown-object refusal (100, subcode 33)."""
    item = state().community.item(item_id)
    if item is None:
        raise GraphError(f"(#100) Unsupported request: no {kind} with ID '{item_id}'", 100, subcode=33)
    return item


def find_group(group_id: str) -> dict[str, Any]:
    """The group ``group_id``, or the unknown-object refusal."""
    group = state().community.group(group_id)
    if group is None:
        raise GraphError(f"(#100) Unsupported request: no group with ID '{group_id}'", 100, subcode=33)
    return group


def item_fields(item: dict[str, Any]) -> dict[str, Any]:
    """A post or comment as Graph shows it."""
    names = state().community.names()
    return {"id": item["id"], "message": item["message"], "created_time": item["time"],
            "from": {"id": item["author_id"], "name": names.get(item["author_id"], item["author_id"])}}

"""Graph API parameters as clients send them: plain, JSON-string, and nested in bracket form.

Node's ``request`` library (Meta's samples use it) and PHP encode a nested ``qs`` or ``form``
object as ``persistent_menu[0][locale]=default&persistent_menu[0][call_to_actions][0][title]=Help``;
Graph reads that the same as the JSON ``{"persistent_menu": [{"locale": "default", ...}]}``. This
module turns such pairs back into the object, and reads Graph's field selection
(``fields=name,managers{name}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from bots.envelope import depth as nesting

#: ``root[a][0][]``: the root name, then any number of bracketed segments.
BRACKETS = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])+)")
SEGMENT = re.compile(r"\[([^\[\]]*)\]")
INDEX = re.compile(r"[0-9]+")
#: Deepest nesting a parameter may have, in brackets or in JSON; Graph's own objects go about 8 deep.
MAX_DEPTH = 64


class ParamError(ValueError):
    """Parameters that cannot make one object (a name given both as a value and as an object)."""


class TooDeep(ParamError):
    """Parameters nested deeper than :data:`MAX_DEPTH`, in brackets or in JSON."""


def parse(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The object that ``pairs`` (a query string's or a form's, in order) encode, bracket keys nested."""
    tree: dict[str, Any] = {}
    for key, value in pairs:
        _place(tree, path_of(key), value)
    return {key: _decoded(_listed(value)) for key, value in tree.items()}


def path_of(key: str) -> list[str]:
    """The segments of a key: ``a[0][b]`` is ``["a", "0", "b"]``, ``a[]`` ends in ``""``, ``a`` is ``["a"]``."""
    found = BRACKETS.fullmatch(key)
    if found is None:
        return [key]
    segments = SEGMENT.findall(found.group(2))
    if len(segments) > MAX_DEPTH:
        raise TooDeep(f"{found.group(1)} is nested deeper than {MAX_DEPTH} brackets")
    return [found.group(1), *segments]


def loads(text: str | bytes) -> Any:
    """JSON as a parameter or a body holds it; :class:`TooDeep` when it nests deeper than MAX_DEPTH (Python's
    decoder would run out of stack), ParamError when it is not JSON."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nesting(raw) > MAX_DEPTH:
        raise TooDeep(f"a parameter is nested deeper than {MAX_DEPTH} arrays and objects")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ParamError(f"a parameter is not JSON: {error}") from None


def _place(tree: dict[str, Any], path: list[str], value: str) -> None:
    """Put ``value`` at ``path`` in ``tree``; an empty segment (``a[]``) appends the next index."""
    node = tree
    for depth, segment in enumerate(path):
        if segment == "" and depth:
            segment = str(len(node))
        last = depth == len(path) - 1
        if last:
            if isinstance(node.get(segment), dict):
                raise ParamError(f"{path[0]} is given both as a value and as an object")
            node.setdefault(segment, value)
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise ParamError(f"{path[0]} is given both as a value and as an object")
        node = child


def _listed(value: Any) -> Any:
    """Nested dicts whose keys are all indices become lists, in index order."""
    if not isinstance(value, dict):
        return value
    items = {key: _listed(child) for key, child in value.items()}
    if items and all(INDEX.fullmatch(key) for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def _decoded(value: Any) -> Any:
    """A plain parameter that holds a JSON object or array (``recipient={"id": "1"}``), decoded."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return loads(value)
        except TooDeep:
            raise
        except ParamError:
            return value
    return value


def encode(value: dict[str, Any]) -> list[tuple[str, str]]:
    """The bracket-form pairs of a nested object, as Node's ``qs`` writes them (indices for arrays)."""
    pairs: list[tuple[str, str]] = []
    for key, child in value.items():
        _flatten(key, child, pairs)
    return pairs


def _flatten(prefix: str, value: Any, pairs: list[tuple[str, str]]) -> None:
    """Append the pairs of ``value`` under the key ``prefix`` (deeper keys in brackets) to ``pairs``."""
    if isinstance(value, dict):
        for key, child in value.items():
            _flatten(f"{prefix}[{key}]", child, pairs)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _flatten(f"{prefix}[{index}]", child, pairs)
    else:
        pairs.append((prefix, as_text(value)))


def as_text(value: Any) -> str:
    """A leaf as a form writes it: ``true``/``false``, numbers in decimal, nothing for null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# field selection -------------------------------------------------------------------------------
def fields_of(text: str) -> dict[str, dict[str, Any]]:
    """Graph's field selection: ``name,managers{name,title}`` is ``{"name": {}, "managers": {"name": {}, ...}}``."""
    if text.count("{") > MAX_DEPTH and _braces_deep(text) > MAX_DEPTH:
        raise TooDeep(f"fields nests selections deeper than {MAX_DEPTH}")
    selection, rest = _selection(text.replace(" ", ""), 0)
    if rest != len(text.replace(" ", "")):
        raise ParamError(f"fields has an unmatched '}}' at {rest}")
    return selection


def _selection(text: str, at: int) -> tuple[dict[str, dict[str, Any]], int]:
    """The fields from ``at`` up to the ``}`` that closes them (or the end), and where that is."""
    chosen: dict[str, dict[str, Any]] = {}
    name = ""
    while at < len(text):
        char = text[at]
        if char == "{":
            chosen[name], at = _selection(text, at + 1)
            if at >= len(text) or text[at] != "}":
                raise ParamError(f"fields has an unclosed '{{' after {name}")
            name = ""
        elif char == "}":
            break
        elif char == ",":
            if name:
                chosen.setdefault(name, {})
            name = ""
        else:
            name += char
        at += 1
    if name:
        chosen.setdefault(name, {})
    return chosen, at


def _braces_deep(text: str) -> int:
    """How deeply ``{`` selections nest in ``text``."""
    deepest = level = 0
    for char in text:
        if char == "{":
            level += 1
            deepest = max(deepest, level)
        elif char == "}":
            level -= 1
    return deepest

"""Composable matchers: decide whether a handler wants an event, and hand it what matched.

A matcher is called with the event and returns something falsy (no) or truthy (yes); a regex
``re.Match`` it returns reaches the handler as ``ctx.match``. Matchers combine with ``&``, ``|``
and ``~``, so ``text(r"^help") & in_group_chat`` reads as it works.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .events import Event

#: A test on an event: falsy for no; a truthy result (a ``re.Match``, say) is what matched.
Predicate = Callable[[Event], object]


class Matcher:
    """A named test on an event; the building block of every ``@bot.on_*`` decorator."""

    __slots__ = ("label", "test")

    def __init__(self, test: Predicate, label: str) -> None:
        self.test = test
        self.label = label

    def __call__(self, event: Event) -> object:
        return self.test(event)

    def __and__(self, other: Predicate) -> Matcher:
        other = as_matcher(other)

        def both(event: Event) -> object:
            first = self.test(event)
            if not first:
                return first
            second = other.test(event)
            return second if not second or isinstance(second, re.Match) else first
        return Matcher(both, f"({self.label} & {other.label})")

    def __or__(self, other: Predicate) -> Matcher:
        other = as_matcher(other)
        return Matcher(lambda event: self.test(event) or other.test(event), f"({self.label} | {other.label})")

    def __invert__(self) -> Matcher:
        return Matcher(lambda event: not self.test(event), f"~{self.label}")

    def __repr__(self) -> str:
        return f"<Matcher {self.label}>"


def as_matcher(spec: Predicate | Matcher) -> Matcher:
    """A predicate ``(event) -> bool`` as a :class:`Matcher`."""
    if isinstance(spec, Matcher):
        return spec
    if not callable(spec):
        raise TypeError(f"expected a matcher or a predicate(event) -> bool, got {spec!r}")
    return Matcher(spec, getattr(spec, "__name__", repr(spec)))


def text(pattern: str | re.Pattern[str] | Predicate | Matcher | None = None) -> Matcher:
    """Match a message's text: a regex (searched, so anchor it with ``^`` for a prefix), or a predicate."""
    if pattern is None:
        return Matcher(lambda event: True, "any")
    if isinstance(pattern, (str, re.Pattern)):
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        return Matcher(lambda event: event.text is not None and regex.search(event.text), f"text~{regex.pattern!r}")
    return as_matcher(pattern)


def payload(spec: str | re.Pattern[str] | Predicate | Matcher | None = None) -> Matcher:
    """Match a postback or quick-reply payload: a string exactly, a compiled regex, or a predicate."""
    if spec is None:
        return Matcher(lambda event: True, "any")
    if isinstance(spec, str):
        return Matcher(lambda event: event.payload == spec, f"payload=={spec!r}")
    if isinstance(spec, re.Pattern):
        return Matcher(lambda event: event.payload is not None and spec.fullmatch(event.payload),
                       f"payload~{spec.pattern!r}")
    return as_matcher(spec)


def value_filters(filters: dict[str, Any]) -> Matcher:
    """Match ``@bot.on(..., verb="add")`` filters against the change's value (or the event's attributes).

    A filter value may be an exact value, a compiled regex, or a predicate on the field's value.
    """
    checks = [(key, _value_test(expected)) for key, expected in filters.items()]

    def test(event: Event) -> bool:
        source = getattr(event, "value", None) or event.raw
        for key, check in checks:
            found = source.get(key) if isinstance(source, dict) and key in source else getattr(event, key, None)
            if not check(found):
                return False
        return True
    label = ", ".join(f"{key}={expected!r}" for key, expected in filters.items())
    return Matcher(test, label or "any")


def _value_test(expected: object) -> Callable[[object], object]:
    if isinstance(expected, re.Pattern):
        return lambda found: isinstance(found, str) and expected.fullmatch(found)
    if callable(expected):
        return expected
    return lambda found: found == expected


def _in_group_chat(event: Event) -> bool:
    return event.thread_id is not None


#: True for chat events from a group chat (they carry a ``thread_id``).
in_group_chat = Matcher(_in_group_chat, "in_group_chat")
#: True for 1:1 chat events.
direct = ~in_group_chat

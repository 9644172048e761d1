"""``Preview``: what a resolver returns for one link and one viewer, and the schema of the answer.

The answer shape is PROTOCOL.md section 7; where the public record is silent (the "no preview"
answer, the limits) it is our choice, kept here in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict, TypeGuard

from marshmallow import RAISE, Schema, ValidationError, fields, validate

PRIVACY = ("organization", "accessible", "inaccessible")
TITLE_MAX = 300
DESCRIPTION_MAX = 1000
ADDITIONAL_MAX = 10


class AdditionalItem(TypedDict):
    """One entry of a preview's ``additional_data``, as checked by :class:`AdditionalSchema`."""

    title: str
    value: str
    format: str


class PreviewItem(TypedDict):
    """One item of the answer's ``data`` list, as checked by :class:`PreviewSchema` (and cached)."""

    link: str
    privacy: str
    title: NotRequired[str]
    description: NotRequired[str]
    type: NotRequired[str]
    icon: NotRequired[str]
    download_url: NotRequired[str]
    canonical_link: NotRequired[str]
    additional_data: NotRequired[list[AdditionalItem]]


class Answer(TypedDict):
    """The response body Workplace reads: the previews (or collection) and, but for "no preview", ``linked_user``."""

    data: list[PreviewItem]
    linked_user: NotRequired[bool]


#: The answer when there is nothing to show: no registration, a failed resolver, or a time-out. [ours]
NO_PREVIEW: Answer = {"data": []}


class PreviewError(ValueError):
    """A resolver returned something that is not a valid preview; the message names the field."""


@dataclass(frozen=True)
class Preview:
    """One link's preview for one viewer.

    ``privacy``: ``organization`` (anyone in the company may see it; cached for everyone),
    ``accessible`` (this viewer may see it), ``inaccessible`` (this viewer may not: no content).
    ``additional_data`` holds ``(title, value)`` pairs or ``{"title", "value", "format"}`` dicts.
    """

    title: str | None = None
    description: str | None = None
    privacy: str = "accessible"
    type: str | None = None
    icon: str | None = None
    download_url: str | None = None
    canonical_link: str | None = None
    link: str | None = None
    additional_data: Iterable[tuple[str, str] | dict[str, str]] = field(default_factory=tuple)

    @classmethod
    def inaccessible(cls, link: str | None = None) -> Preview:
        """The answer for a viewer who may not see the document: Workplace shows no content."""
        return cls(privacy="inaccessible", link=link)

    def to_dict(self, link: str) -> PreviewItem:
        """This preview as one item of the answer's ``data`` list, checked; raises PreviewError."""
        item: dict[str, Any] = {"link": self.link or link, "privacy": self.privacy}
        if self.privacy != "inaccessible":
            for name in ("title", "description", "type", "icon", "download_url", "canonical_link"):
                if (value := getattr(self, name)) is not None:
                    item[name] = value
            extra = [_additional(entry) for entry in self.additional_data]
            if extra:
                item["additional_data"] = extra
        return check(item)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _url(value: str) -> None:
    if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
        raise ValidationError("must be an absolute http(s) URL")


class AdditionalSchema(_Strict):
    title = fields.String(required=True, validate=validate.Length(1, 100))
    value = fields.String(required=True, validate=validate.Length(0, 500))
    format = fields.String(load_default="text", validate=validate.OneOf(("text", "date", "user", "url")))


class PreviewSchema(_Strict):
    """One item of the ``data`` list Workplace reads from the response body."""

    link = fields.String(required=True, validate=_url)
    privacy = fields.String(required=True, validate=validate.OneOf(PRIVACY))
    title = fields.String(validate=validate.Length(1, TITLE_MAX))
    description = fields.String(validate=validate.Length(0, DESCRIPTION_MAX))
    type = fields.String(validate=validate.Length(1, 50))
    icon = fields.String(validate=_url)
    download_url = fields.String(validate=_url)
    canonical_link = fields.String(validate=_url)
    additional_data = fields.List(fields.Nested(AdditionalSchema), validate=validate.Length(max=ADDITIONAL_MAX))


_SCHEMA = PreviewSchema()


def check(item: Mapping[str, Any]) -> PreviewItem:
    """``item`` loaded by the schema; a preview the viewer may see needs a title."""
    try:
        # The schema checks every field of PreviewItem, so what it loads has that shape.
        loaded: PreviewItem = _SCHEMA.load(item)
    except ValidationError as error:
        key, messages = next(iter(error.messages_dict.items()))
        raise PreviewError(f"{key}: {messages[0] if isinstance(messages, list) else messages}") from None
    if loaded["privacy"] != "inaccessible" and not loaded.get("title"):
        raise PreviewError("title: a preview the viewer may see needs a title")
    return loaded


def answer(items: list[PreviewItem], linked_user: bool = True) -> Answer:
    """The response body: ``{"data": [...], "linked_user": ...}``."""
    return {"data": items, "linked_user": linked_user}


def is_item(value: object) -> TypeGuard[PreviewItem]:
    """Whether ``value`` (read back from a cache, say) is a preview item: a dict with a string link and privacy."""
    return isinstance(value, dict) and isinstance(value.get("link"), str) and isinstance(value.get("privacy"), str)


def _additional(entry: tuple[str, str] | dict[str, str]) -> dict[str, str]:
    if isinstance(entry, dict):
        return dict(entry)
    title, value = entry
    return {"title": title, "value": value, "format": "text"}

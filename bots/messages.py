"""Message bodies for the Send API (PROTOCOL.md section 5), built and checked against Messenger's rules.

Each builder returns a plain dict, the ``message`` of a ``POST /me/messages``. :func:`validate`
checks any body, built here or by hand, before it is sent: a body that breaks a rule raises
:class:`MessageError` naming the field and the rule, so nothing half-right leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validates_schema
from marshmallow.validate import OneOf

from .schemas import error_path

# Messenger's documented Send API limits, all in one place.
TEXT_MAX = 2000
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
PAYLOAD_MAX = 1000
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
ELEMENTS_MAX = 10
ELEMENT_TITLE_MAX = 80
ELEMENT_SUBTITLE_MAX = 80
BUTTON_TEMPLATE_TEXT_MAX = 640
GREETING_MAX = 160
MENU_ITEMS_MAX = 20

MEDIA_TYPES = ("image", "audio", "video", "file")
SENDER_ACTIONS = ("mark_seen", "typing_on", "typing_off")

QuickReplies = Iterable[tuple[str, str] | tuple[str, str, str] | Mapping[str, Any]] | None


class MessageError(ValueError):
    """A message body that breaks one of Messenger's rules: ``field`` is where, ``rule`` is which."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(field, rule)
        self.field = field
        self.rule = rule

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


def _chars(most: int) -> Callable[[str], None]:
    """A check for text that is not blank and has at most ``most`` characters."""

    def check(value: str) -> None:
        if not value.strip():
            raise ValidationError("must not be empty")
        if len(value) > most:
            raise ValidationError(f"at most {most} characters")

    return check


def _url(value: str) -> None:
    """Only absolute http(s) URLs with a host: no ``javascript:``, no other schemes, no relative paths."""
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or not value.isprintable() or " " in value:
        raise ValidationError("must be an absolute http or https URL")


def _one_of(*choices: str) -> OneOf:
    return OneOf(choices, error="must be one of: {choices}")


_ERRORS: dict[str, str | list[Any] | dict[Any, Any]] = {"required": "is required", "null": "must not be null",
                                                        "invalid": "must be a string"}


def _string(*checks: Callable[[str], None], required: bool = False) -> fields.String:
    return fields.String(required=required, validate=list(checks), error_messages=_ERRORS)


class _Flag(fields.Field[bool]):
    """A JSON boolean, and nothing that merely looks like one (``1``, ``"true"``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        flag: bool = value
        return flag


class _Many(fields.List[Any]):
    """A non-empty list of at most ``most`` items; when there are too many, the error names the first extra one."""

    def __init__(self, inner: fields.Field[Any], most: int, noun: str, **kwargs: Any) -> None:
        super().__init__(inner, error_messages=_ERRORS, **kwargs)
        self.most = most
        self.noun = noun

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise ValidationError("must be a list")
        if not value:
            raise ValidationError("must not be empty")
        if len(value) > self.most:
            raise ValidationError({self.most: [f"at most {self.most} {self.noun}"]})
        return super()._deserialize(value, attr, data, **kwargs)


class _ByKind(fields.Field[dict[str, Any]]):
    """An object whose schema one of its own keys picks: an attachment's or button's ``type``,
    a template's ``template_type``."""

    def __init__(self, key: str, schemas: dict[str, Schema], **kwargs: Any) -> None:
        super().__init__(error_messages=_ERRORS, **kwargs)
        self.key = key
        self.schemas = schemas

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValidationError("must be an object")
        kind = value.get(self.key)
        if kind is None:
            raise ValidationError({self.key: ["is required"]})
        schema = self.schemas.get(kind) if isinstance(kind, str) else None
        if schema is None:
            raise ValidationError({self.key: [f"must be one of: {', '.join(self.schemas)}"]})
        try:
            loaded: dict[str, Any] = schema.load(value)
        except ValidationError as error:
            raise ValidationError(error.messages) from None
        return loaded


class _Strict(Schema):
    """Bodies we build ourselves: an unknown key is a typo, reported before anything else."""

    error_messages = {"unknown": "unknown field", "type": "must be an object"}

    class Meta:
        unknown = RAISE

    @pre_load
    def _known_keys_only(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in self.load_fields:
                    raise ValidationError({key: ["unknown field"]})
        return data


class QuickReplySchema(_Strict):
    content_type = _string(_one_of("text"), required=True)
    title = _string(_chars(QUICK_REPLY_TITLE_MAX), required=True)
    payload = _string(_chars(PAYLOAD_MAX), required=True)
    image_url = _string(_url)


class PostbackButtonSchema(_Strict):
    type = _string(_one_of("postback"), required=True)
    title = _string(_chars(BUTTON_TITLE_MAX), required=True)
    payload = _string(_chars(PAYLOAD_MAX), required=True)


class UrlButtonSchema(_Strict):
    type = _string(_one_of("web_url"), required=True)
    title = _string(_chars(BUTTON_TITLE_MAX), required=True)
    url = _string(_url, required=True)


BUTTON_SCHEMAS: dict[str, Schema] = {"postback": PostbackButtonSchema(), "web_url": UrlButtonSchema()}


def _buttons(required: bool = False) -> _Many:
    return _Many(_ByKind("type", BUTTON_SCHEMAS), BUTTONS_MAX, "buttons", required=required)


class DefaultActionSchema(_Strict):
    type = _string(_one_of("web_url"), required=True)
    url = _string(_url, required=True)


class ElementSchema(_Strict):
    title = _string(_chars(ELEMENT_TITLE_MAX), required=True)
    subtitle = _string(_chars(ELEMENT_SUBTITLE_MAX))
    image_url = _string(_url)
    default_action = fields.Nested(DefaultActionSchema, error_messages=_ERRORS)
    buttons = _buttons()


class ButtonTemplateSchema(_Strict):
    template_type = _string(_one_of("button"), required=True)
    text = _string(_chars(BUTTON_TEMPLATE_TEXT_MAX), required=True)
    buttons = _buttons(required=True)


class GenericTemplateSchema(_Strict):
    template_type = _string(_one_of("generic"), required=True)
    elements = _Many(fields.Nested(ElementSchema), ELEMENTS_MAX, "elements", required=True)


TEMPLATE_SCHEMAS: dict[str, Schema] = {"button": ButtonTemplateSchema(), "generic": GenericTemplateSchema()}


class MediaPayloadSchema(_Strict):
    url = _string(_url, required=True)
    is_reusable = _Flag(error_messages=_ERRORS)


class MediaAttachmentSchema(_Strict):
    type = _string(_one_of(*MEDIA_TYPES), required=True)
    payload = fields.Nested(MediaPayloadSchema, required=True, error_messages=_ERRORS)


class TemplateAttachmentSchema(_Strict):
    type = _string(_one_of("template"), required=True)
    payload = _ByKind("template_type", TEMPLATE_SCHEMAS, required=True)


ATTACHMENT_SCHEMAS: dict[str, Schema] = {**dict.fromkeys(MEDIA_TYPES, MediaAttachmentSchema()),
                                         "template": TemplateAttachmentSchema()}


class MessageSchema(_Strict):
    """The Send API ``message``: text or one attachment, with optional quick replies."""

    text = _string(_chars(TEXT_MAX))
    quick_replies = _Many(fields.Nested(QuickReplySchema), QUICK_REPLIES_MAX, "quick replies")
    attachment = _ByKind("type", ATTACHMENT_SCHEMAS)

    @validates_schema
    def _text_or_attachment(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("text" in data) == ("attachment" in data):
            raise ValidationError("needs exactly one of text or attachment")


class GetStartedSchema(_Strict):
    payload = _string(_chars(PAYLOAD_MAX), required=True)


class GreetingSchema(_Strict):
    locale = _string(required=True)
    text = _string(_chars(GREETING_MAX), required=True)


class MenuSchema(_Strict):
    locale = _string(required=True)
    composer_input_disabled = _Flag(error_messages=_ERRORS)
    call_to_actions = _Many(_ByKind("type", BUTTON_SCHEMAS), MENU_ITEMS_MAX, "menu items", required=True)


class ProfileSchema(_Strict):
    """The Messenger profile (``/me/messenger_profile``): Get Started, greeting, persistent menu."""

    get_started = fields.Nested(GetStartedSchema, error_messages=_ERRORS)
    greeting = _Many(fields.Nested(GreetingSchema), 100, "greetings")
    persistent_menu = _Many(fields.Nested(MenuSchema), 100, "menus")

    @validates_schema
    def _menu_needs_get_started(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "persistent_menu" in data and "get_started" not in data:
            raise ValidationError("a persistent menu needs a Get Started payload", "persistent_menu")


_MESSAGE = MessageSchema()
_PROFILE = ProfileSchema()
_QUICK_REPLY = QuickReplySchema()
_ELEMENT = ElementSchema()


def validate(message: dict[str, Any]) -> dict[str, Any]:
    """Check a ``message`` body against every rule; returns it, or raises :class:`MessageError` for the
    first broken one (a rule about the body as a whole names the field ``message``)."""
    return _load(_MESSAGE, message)


def _load(schema: Schema, body: Any, part: str = "") -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(body)
    except ValidationError as error:
        field, rule = error_path(error.messages, part)
        raise MessageError(field or part or "message", rule) from None
    return loaded


def profile(get_started: str | None = None, greeting: str | None = None,
            menu: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """A checked ``messenger_profile`` body for the default locale; ``{}`` when nothing is declared.

    ``menu`` holds :func:`postback_button` and :func:`url_button` items.
    """
    body: dict[str, Any] = {}
    if get_started is not None:
        body["get_started"] = {"payload": get_started}
    if greeting is not None:
        body["greeting"] = [{"locale": "default", "text": greeting}]
    if menu:
        body["persistent_menu"] = [{"locale": "default", "composer_input_disabled": False,
                                    "call_to_actions": list(menu)}]
    return _load(_PROFILE, body) if body else {}


def text(body: str, quick_replies: QuickReplies = None) -> dict[str, Any]:
    """A text message; quick replies are ``(title, payload)`` pairs, dicts or :func:`quick_reply` results."""
    message: dict[str, Any] = {"text": body}
    if quick_replies:
        message["quick_replies"] = [_as_quick_reply(item, index) for index, item in enumerate(quick_replies)]
    return validate(message)


def quick_reply(title: str, payload: str, image_url: str | None = None) -> dict[str, Any]:
    """One quick reply: a chip under a message that sends ``payload`` back when tapped."""
    return _load(_QUICK_REPLY, _quick_reply(title, payload, image_url), "quick_reply")


def _quick_reply(title: str, payload: str, image_url: str | None = None) -> dict[str, Any]:
    body = {"content_type": "text", "title": title, "payload": payload}
    if image_url is not None:
        body["image_url"] = image_url
    return body


def _as_quick_reply(item: Any, index: int) -> dict[str, Any]:
    """A quick reply given as a pair (or a triple with an image URL) or a dict, as a body still to check."""
    if isinstance(item, Mapping):
        return {"content_type": "text", **item}
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        return _quick_reply(*item)
    raise MessageError(f"quick_replies[{index}]", "must be a (title, payload) pair or a dict")


def attachment(type: str, url: str, reusable: bool = False) -> dict[str, Any]:
    """An image, audio, video or file sent by URL; ``reusable`` asks Messenger to keep it for reuse."""
    if type not in MEDIA_TYPES:
        raise MessageError("attachment.type", f"must be one of: {', '.join(MEDIA_TYPES)}")
    payload: dict[str, Any] = {"url": url}
    if reusable:
        payload["is_reusable"] = True
    return validate({"attachment": {"type": type, "payload": payload}})


def button_template(text: str, buttons: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Text with up to three buttons under it (from :func:`postback_button` and :func:`url_button`)."""
    payload = {"template_type": "button", "text": text, "buttons": list(buttons)}
    return validate({"attachment": {"type": "template", "payload": payload}})


def generic_template(elements: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A carousel of up to ten cards, each made by :func:`element`."""
    payload = {"template_type": "generic", "elements": list(elements)}
    return validate({"attachment": {"type": "template", "payload": payload}})


def element(title: str, subtitle: str | None = None, image_url: str | None = None,
            default_action_url: str | None = None, buttons: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One card of a generic template; ``default_action_url`` opens when the card itself is tapped."""
    body: dict[str, Any] = {"title": title}
    if subtitle is not None:
        body["subtitle"] = subtitle
    if image_url is not None:
        body["image_url"] = image_url
    if default_action_url is not None:
        body["default_action"] = {"type": "web_url", "url": default_action_url}
    if buttons:
        body["buttons"] = list(buttons)
    return _load(_ELEMENT, body, "element")


def postback_button(title: str, payload: str) -> dict[str, Any]:
    """A button that sends ``payload`` back to the bot as a postback event."""
    return _load(BUTTON_SCHEMAS["postback"], {"type": "postback", "title": title, "payload": payload}, "button")


def url_button(title: str, url: str) -> dict[str, Any]:
    """A button that opens ``url``."""
    return _load(BUTTON_SCHEMAS["web_url"], {"type": "web_url", "title": title, "url": url}, "button")


def sender_action(name: str) -> str:
    """A Send API ``sender_action``: ``mark_seen``, ``typing_on`` or ``typing_off``."""
    if name not in SENDER_ACTIONS:
        raise MessageError("sender_action", f"must be one of: {', '.join(SENDER_ACTIONS)}")
    return name

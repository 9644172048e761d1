"""Message builders give the Send API JSON of PROTOCOL.md section 5, and every Messenger rule is checked."""

from __future__ import annotations

import pickle

import pytest

from bots import messages as m
from bots.messages import MessageError

POSTBACK = {"type": "postback", "title": "Yes", "payload": "YES"}
LINK = {"type": "web_url", "title": "Open", "url": "https://example.com/a"}


def template(payload: dict) -> dict:
    """A template message body, by hand, so a test can break it."""
    return {"attachment": {"type": "template", "payload": payload}}


def buttons(count: int) -> dict:
    return template({"template_type": "button", "text": "Pick", "buttons": [POSTBACK] * count})


def elements(count: int, **card: object) -> dict:
    return template({"template_type": "generic", "elements": [{"title": "Card", **card}] * count})


def quick_replies(count: int, title: str = "Yes", payload: str = "YES") -> dict:
    return {"text": "Sure?", "quick_replies": [{"content_type": "text", "title": title, "payload": payload}] * count}


def image(url: str) -> dict:
    return {"attachment": {"type": "image", "payload": {"url": url}}}


# Builders: each gives exactly the Send API body.

def test_text():
    assert m.text("Hello") == {"text": "Hello"}


def test_text_with_quick_replies_as_pairs_dicts_or_built():
    message = m.text("Printer or laptop?", [
        ("Printer", "PRINTER"),
        {"title": "Laptop", "payload": "LAPTOP", "image_url": "https://example.com/laptop.png"},
        m.quick_reply("Other", "OTHER"),
    ])
    assert message == {"text": "Printer or laptop?", "quick_replies": [
        {"content_type": "text", "title": "Printer", "payload": "PRINTER"},
        {"content_type": "text", "title": "Laptop", "payload": "LAPTOP", "image_url": "https://example.com/laptop.png"},
        {"content_type": "text", "title": "Other", "payload": "OTHER"},
    ]}


def test_quick_reply_with_an_image():
    assert m.quick_reply("Red", "RED", "https://example.com/red.png") == {
        "content_type": "text", "title": "Red", "payload": "RED", "image_url": "https://example.com/red.png"}


def test_attachment_by_url():
    assert m.attachment("image", "https://example.com/cat.png") == {
        "attachment": {"type": "image", "payload": {"url": "https://example.com/cat.png"}}}


def test_reusable_attachment():
    assert m.attachment("file", "https://example.com/a.pdf", reusable=True) == {
        "attachment": {"type": "file", "payload": {"url": "https://example.com/a.pdf", "is_reusable": True}}}


def test_buttons():
    assert m.postback_button("Yes", "YES") == POSTBACK
    assert m.url_button("Open", "https://example.com/a") == LINK


def test_button_template():
    pair = [m.postback_button("Yes", "YES"), m.url_button("Open", "https://example.com/a")]
    assert m.button_template("Pick one", pair) == {
        "attachment": {"type": "template", "payload": {
            "template_type": "button", "text": "Pick one", "buttons": [POSTBACK, LINK]}}}


def test_generic_template():
    card = m.element("Laptop", subtitle="14 inch", image_url="https://example.com/l.png",
                     default_action_url="https://example.com/l", buttons=[m.postback_button("Yes", "YES")])
    assert m.generic_template([card, m.element("Mouse")]) == {
        "attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [
            {"title": "Laptop", "subtitle": "14 inch", "image_url": "https://example.com/l.png",
             "default_action": {"type": "web_url", "url": "https://example.com/l"}, "buttons": [POSTBACK]},
            {"title": "Mouse"},
        ]}}}


@pytest.mark.parametrize("name", m.SENDER_ACTIONS)
def test_sender_actions(name):
    assert m.sender_action(name) == name


def test_validate_takes_a_hand_made_body():
    body = {"text": "Hi", "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "YES"}]}
    assert m.validate(body) == body


# Limits: exactly at the maximum passes.

@pytest.mark.parametrize("message", [
    {"text": "x" * m.TEXT_MAX},
    quick_replies(m.QUICK_REPLIES_MAX),
    quick_replies(1, title="x" * m.QUICK_REPLY_TITLE_MAX, payload="p" * m.PAYLOAD_MAX),
    buttons(m.BUTTONS_MAX),
    elements(m.ELEMENTS_MAX, title="t" * m.ELEMENT_TITLE_MAX, subtitle="s" * m.ELEMENT_SUBTITLE_MAX,
             buttons=[POSTBACK] * m.BUTTONS_MAX),
    template({"template_type": "button", "text": "x" * m.BUTTON_TEMPLATE_TEXT_MAX, "buttons": [LINK]}),
    {"attachment": {"type": "video", "payload": {"url": "http://localhost:8080/v.mp4", "is_reusable": False}}},
], ids=["text", "quick replies", "quick reply title and payload", "buttons", "elements", "button template text",
        "media"])
def test_limits_exactly_at_the_maximum_pass(message):
    assert m.validate(message) == message


# Rules: each broken one names the field and the rule.

@pytest.mark.parametrize(("message", "field", "rule"), [
    ({"text": "x" * 2001}, "text", "at most 2000 characters"),
    ({"text": ""}, "text", "must not be empty"),
    ({"text": " \n "}, "text", "must not be empty"),
    ({"text": 42}, "text", "must be a string"),
    (quick_replies(14), "quick_replies[13]", "at most 13 quick replies"),
    ({"text": "Sure?", "quick_replies": []}, "quick_replies", "must not be empty"),
    (quick_replies(1, title="x" * 21), "quick_replies[0].title", "at most 20 characters"),
    (quick_replies(1, payload="p" * 1001), "quick_replies[0].payload", "at most 1000 characters"),
    ({"text": "a", "quick_replies": [{"content_type": "location", "title": "a", "payload": "b"}]},
     "quick_replies[0].content_type", "must be one of: text"),
    ({"text": "a", "quick_replies": [{"content_type": "text", "title": "a"}]},
     "quick_replies[0].payload", "is required"),
    (buttons(4), "attachment.payload.buttons[3]", "at most 3 buttons"),
    (elements(11), "attachment.payload.elements[10]", "at most 10 elements"),
    (elements(1, buttons=[POSTBACK] * 4), "attachment.payload.elements[0].buttons[3]", "at most 3 buttons"),
    (elements(1, title="t" * 81), "attachment.payload.elements[0].title", "at most 80 characters"),
    (elements(1, subtitle="s" * 81), "attachment.payload.elements[0].subtitle", "at most 80 characters"),
    (elements(1, default_action={"type": "postback", "url": "https://example.com"}),
     "attachment.payload.elements[0].default_action.type", "must be one of: web_url"),
    (template({"template_type": "button", "text": "x" * 641, "buttons": [POSTBACK]}),
     "attachment.payload.text", "at most 640 characters"),
    (template({"template_type": "button", "text": "Pick"}), "attachment.payload.buttons", "is required"),
    (template({"template_type": "button", "text": "Pick", "buttons": [{**POSTBACK, "title": "x" * 21}]}),
     "attachment.payload.buttons[0].title", "at most 20 characters"),
    (template({"template_type": "button", "text": "Pick", "buttons": [{**POSTBACK, "payload": "p" * 1001}]}),
     "attachment.payload.buttons[0].payload", "at most 1000 characters"),
    (template({"template_type": "button", "text": "Pick", "buttons": [{**LINK, "type": "call"}]}),
     "attachment.payload.buttons[0].type", "must be one of: postback, web_url"),
    (template({"template_type": "button", "text": "Pick", "buttons": [{**POSTBACK, "url": "https://e.com"}]}),
     "attachment.payload.buttons[0].url", "unknown field"),
    (image("ftp://x"), "attachment.payload.url", "must be an absolute http or https URL"),
    (image("javascript:alert(1)"), "attachment.payload.url", "must be an absolute http or https URL"),
    (image("/cat.png"), "attachment.payload.url", "must be an absolute http or https URL"),
    (image("https://"), "attachment.payload.url", "must be an absolute http or https URL"),
    (image("https://example.com/a b.png"), "attachment.payload.url", "must be an absolute http or https URL"),
    ({"attachment": {"type": "image", "payload": {"url": "https://e.com/a.png", "is_reusable": "yes"}}},
     "attachment.payload.is_reusable", "must be true or false"),
    ({"attachment": {"type": "sticker", "payload": {"url": "https://example.com/s.png"}}},
     "attachment.type", "must be one of: image, audio, video, file, template"),
    (template({"template_type": "list", "elements": []}),
     "attachment.payload.template_type", "must be one of: button, generic"),
    ({"text": "Hi", **image("https://example.com/cat.png")}, "message", "needs exactly one of text or attachment"),
    ({}, "message", "needs exactly one of text or attachment"),
    ({"text": "Hi", "colour": "red"}, "colour", "unknown field"),
    ({"attachment": {"type": "image", "payload": {"url": "https://e.com/a.png", "reusable": True}}},
     "attachment.payload.reusable", "unknown field"),
    ("Hi", "message", "must be an object"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 60 else None)
def test_a_broken_rule_names_field_and_rule(message, field, rule):
    with pytest.raises(MessageError) as caught:
        m.validate(message)
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert str(caught.value) == f"{field}: {rule}"


@pytest.mark.parametrize(("build", "field", "rule"), [
    (lambda: m.text("x" * 2001), "text", "at most 2000 characters"),
    (lambda: m.text("Sure?", [("Yes", "YES")] * 14), "quick_replies[13]", "at most 13 quick replies"),
    (lambda: m.text("Sure?", ["Yes"]), "quick_replies[0]", "must be a (title, payload) pair or a dict"),
    (lambda: m.quick_reply("x" * 21, "P"), "quick_reply.title", "at most 20 characters"),
    (lambda: m.quick_reply("Red", "RED", "red.png"), "quick_reply.image_url", "must be an absolute http or https URL"),
    (lambda: m.attachment("template", "https://e.com/a"), "attachment.type",
     "must be one of: image, audio, video, file"),
    (lambda: m.attachment("image", "javascript:alert(1)"), "attachment.payload.url",
     "must be an absolute http or https URL"),
    (lambda: m.postback_button("Yes", ""), "button.payload", "must not be empty"),
    (lambda: m.url_button("Open", "example.com"), "button.url", "must be an absolute http or https URL"),
    (lambda: m.element("t" * 81), "element.title", "at most 80 characters"),
    (lambda: m.element("Card", default_action_url="ftp://x"), "element.default_action.url",
     "must be an absolute http or https URL"),
    (lambda: m.button_template("Pick", [POSTBACK] * 4), "attachment.payload.buttons[3]", "at most 3 buttons"),
    (lambda: m.generic_template([{"title": "Card"}] * 11), "attachment.payload.elements[10]", "at most 10 elements"),
    (lambda: m.sender_action("typing"), "sender_action", "must be one of: mark_seen, typing_on, typing_off"),
])
def test_builders_refuse_what_breaks_a_rule(build, field, rule):
    with pytest.raises(MessageError) as caught:
        build()
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_unknown_keys_are_reported_before_other_errors():
    with pytest.raises(MessageError, match=r"^quick_replies\[0\]\.titel: unknown field$"):
        m.validate({"text": "a", "quick_replies": [{"content_type": "text", "titel": "a", "payload": "b"}]})


def test_a_message_error_is_a_value_error_that_survives_pickling():
    error = MessageError("text", "at most 2000 characters")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.rule, str(copy)) == ("text", "at most 2000 characters", "text: at most 2000 characters")

"""Which logos and preview icons a page shows: checked once through the SSRF guard, over real HTTP."""

from __future__ import annotations

import pytest
from flask import Flask, redirect

from emulator import logos

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def images(serve) -> str:
    """A loopback server with an image, a page, and a redirect to the cloud metadata address."""
    app = Flask("images")
    app.add_url_rule("/logo.png", "logo", view_func=lambda: (PNG, 200, {"Content-Type": "image/png"}))
    app.add_url_rule("/page", "page", view_func=lambda: ("<html></html>", 200, {"Content-Type": "text/html"}))
    app.add_url_rule("/to-metadata", "to_metadata", view_func=lambda: redirect("http://169.254.169.254/latest/meta-data/"))
    logos.forget()
    yield serve(app)
    logos.forget()


def test_an_image_on_an_allowed_address_loads_and_a_page_does_not(images):
    assert logos.loadable(f"{images}/logo.png")
    assert not logos.loadable(f"{images}/page")
    assert not logos.loadable("ftp://example.org/logo.png") and not logos.loadable(None)


def test_addresses_the_guard_refuses_are_never_asked(images, monkeypatch):
    monkeypatch.setenv("EMULATOR_FETCH_ALLOW", "")
    assert not logos.loadable(f"{images}/logo.png"), "loopback is refused once it is not allowed"
    monkeypatch.delenv("EMULATOR_FETCH_ALLOW")
    assert not logos.loadable(f"{images}/to-metadata"), "a redirect to the metadata address is refused"
    assert not logos.loadable("http://10.0.0.1/logo.png")

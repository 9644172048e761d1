"""Reading a page's own metadata: which source wins, absolute http(s) URLs only, tidy and capped text."""

from __future__ import annotations

from linkpreview.opengraph import FIELDS, read_metadata
from linkpreview.preview import DESCRIPTION_MAX, TITLE_MAX

BASE = "https://docs.example.com/d/abc123"


def page(head: str, body: str = "") -> str:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def test_opengraph_wins_over_twitter_and_title():
    meta = read_metadata(page("""
        <title>Plain title</title>
        <meta name="twitter:title" content="Twitter title">
        <meta property="og:title" content="OG title">
        <meta name="description" content="Plain description">
        <meta name="twitter:description" content="Twitter description">
        <meta property="og:description" content="OG description">
        <meta name="twitter:image" content="https://cdn.example.com/t.png">
        <meta property="og:image" content="https://cdn.example.com/og.png">
        <meta property="og:type" content="article">
        <meta property="og:site_name" content="Docs">
        <meta property="og:url" content="https://docs.example.com/d/abc123?canonical">
        <link rel="canonical" href="https://docs.example.com/other">"""), BASE)
    assert meta == {"title": "OG title", "description": "OG description", "image": "https://cdn.example.com/og.png",
                    "icon": None, "canonical_link": "https://docs.example.com/d/abc123?canonical", "type": "article",
                    "site_name": "Docs"}


def test_twitter_then_title_fill_in_what_opengraph_lacks():
    meta = read_metadata(page("""
        <title>Plain title</title>
        <meta name="twitter:description" content="Twitter description">
        <meta name="description" content="Plain description">
        <meta name="twitter:image" content="/t.png">"""), BASE)
    assert meta["title"] == "Plain title"
    assert meta["description"] == "Twitter description"
    assert meta["image"] == "https://docs.example.com/t.png"


def test_the_plain_tags_are_the_last_resort():
    meta = read_metadata(page('<title>Only</title><meta name="description" content="Plain">'), BASE)
    assert (meta["title"], meta["description"]) == ("Only", "Plain")


def test_every_field_is_present_and_none_when_the_page_says_nothing():
    assert read_metadata("<p>nothing here</p>", BASE) == dict.fromkeys(FIELDS)


def test_relative_urls_are_made_absolute():
    meta = read_metadata(page("""
        <meta property="og:image" content="../img/cover.png">
        <link rel="icon" href="/favicon-32.png">
        <link rel="canonical" href="abc123?view=1">"""), BASE)
    assert meta["image"] == "https://docs.example.com/img/cover.png"
    assert meta["icon"] == "https://docs.example.com/favicon-32.png"
    assert meta["canonical_link"] == "https://docs.example.com/d/abc123?view=1"


def test_protocol_relative_and_base_href_urls():
    meta = read_metadata(page("""
        <base href="https://static.example.com/assets/">
        <meta property="og:image" content="//cdn.example.com/a.png">
        <link rel="apple-touch-icon" href="touch.png">"""), BASE)
    assert meta["image"] == "https://cdn.example.com/a.png"
    assert meta["icon"] == "https://static.example.com/assets/touch.png"


def test_icon_prefers_rel_icon_and_guesses_nothing():
    head = '<link rel="apple-touch-icon" href="/touch.png"><link rel="shortcut icon" href="/s.ico">'
    meta = read_metadata(page(head), BASE)
    assert meta["icon"] == "https://docs.example.com/s.ico"
    assert read_metadata(page("<title>x</title>"), BASE)["icon"] is None


def test_non_http_urls_are_dropped():
    meta = read_metadata(page("""
        <meta property="og:image" content="javascript:alert(1)">
        <meta property="og:image" content=" JavaScript:alert(2)">
        <meta name="twitter:image" content="data:image/png;base64,AAAA">
        <link rel="icon" href="file:///etc/passwd">
        <meta property="og:url" content="ftp://docs.example.com/d">"""), BASE)
    assert (meta["image"], meta["icon"], meta["canonical_link"]) == (None, None, None)


def test_a_dropped_url_falls_back_to_the_next_source():
    meta = read_metadata(page("""
        <meta property="og:image" content="javascript:alert(1)">
        <meta name="twitter:image" content="https://cdn.example.com/ok.png">"""), BASE)
    assert meta["image"] == "https://cdn.example.com/ok.png"


def test_whitespace_is_stripped_and_collapsed():
    meta = read_metadata(page("""<title>
          Q3
          planning\t  notes </title>
        <meta property="og:description" content="  Owner:\n  Dana \u00a0 edited ">"""), BASE)
    assert meta["title"] == "Q3 planning notes"
    assert meta["description"] == "Owner: Dana edited"


def test_blank_values_count_as_missing():
    meta = read_metadata(page('<meta property="og:title" content="   "><title>Fallback</title>'), BASE)
    assert meta["title"] == "Fallback"


def test_long_text_is_capped_at_the_preview_limits():
    meta = read_metadata(page(f'<title>{"word " * 200}</title><meta name="description" content="{"x" * 5000}">'),
                         BASE)
    assert len(meta["title"]) <= TITLE_MAX and meta["title"].endswith("…")
    assert len(meta["description"]) == DESCRIPTION_MAX and meta["description"].endswith("…")
    short = "y" * TITLE_MAX
    assert read_metadata(page(f"<title>{short}</title>"), BASE)["title"] == short


def test_a_type_too_long_for_a_preview_is_left_out():
    assert read_metadata(page(f'<meta property="og:type" content="{"t" * 80}">'), BASE)["type"] is None


def test_an_svg_title_is_not_the_page_title():
    meta = read_metadata("<html><body><svg><title>icon</title></svg><title>Real</title></body></html>", BASE)
    assert meta["title"] == "Real"


def test_broken_html_is_read_as_far_as_it_goes():
    meta = read_metadata('<html><head><meta property="og:title" content="Still here"><title>unclosed', BASE)
    assert meta["title"] == "Still here"

"""Signatures and appsecret_proof, checked against values computed independently."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bots.errors import WebhookError
from bots.signature import appsecret_proof, sign, tokens_equal, verify

BODY = b'{"object":"page","entry":[]}'


def test_sign_matches_hmac_sha256_and_sha1_of_the_raw_bytes():
    assert sign(BODY, "s3cret") == "sha256=" + hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, "s3cret", "sha1") == "sha1=" + hmac.new(b"s3cret", BODY, hashlib.sha1).hexdigest()


def test_verify_reports_which_algorithm_verified():
    assert verify(BODY, {"X-Hub-Signature-256": sign(BODY, "k")}, ["k"]) == "sha256"
    assert verify(BODY, {"X-Hub-Signature": sign(BODY, "k", "sha1")}, ["k"]) == "sha1"


def test_a_reserialised_body_does_not_verify():
    with pytest.raises(WebhookError):
        verify(b'{"object": "page", "entry": []}', {"X-Hub-Signature-256": sign(BODY, "k")}, ["k"])


def test_any_of_several_secrets_verifies():
    assert verify(BODY, {"X-Hub-Signature-256": sign(BODY, "old")}, ["new", "old"]) == "sha256"


def test_classic_proof_signs_the_token():
    expected = hmac.new(b"secret", b"token", hashlib.sha256).hexdigest()
    assert appsecret_proof("token", "secret") == {"appsecret_proof": expected}


def test_timed_proof_signs_token_and_time():
    expected = hmac.new(b"secret", b"token|1700000000", hashlib.sha256).hexdigest()
    assert appsecret_proof("token", "secret", 1700000000) == {"appsecret_proof": expected,
                                                               "appsecret_time": "1700000000"}


def test_tokens_equal():
    assert tokens_equal("abc", "abc")
    assert not tokens_equal("abd", "abc")
    assert not tokens_equal(None, "abc")
    assert not tokens_equal("é", "abc")

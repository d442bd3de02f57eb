"""`logs.redact`: secrets go by their exact key names and their look, ordinary data stays.

It masks both log lines and the activity log's metadata, so a false positive silently
destroys audit data (issue 14: any key *containing* `access` or `token` became `***`).
"""

from __future__ import annotations

import pytest

from chalicelib.core import activity, logs

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "password2",
        "current_password",
        "new_password",
        "access",
        "refresh",
        "token",
        "access_token",
        "refresh_token",
        "signature_key",
        "aamarpay_signature_key",
        "jwt_signing_key",
        "authorization",
        "Authorization",
        "cookie",
        "Set-Cookie",
        "NEW_PASSWORD",
    ],
)
def test_secret_keys_are_masked_at_any_depth(key: str) -> None:
    value = {"outer": [{key: "hunter2hunter2", "kept": 1}], key: {"nested": "dict"}}
    assert logs.redact(value) == {"outer": [{key: "***", "kept": 1}], key: "***"}


@pytest.mark.parametrize(
    "key",
    [
        "access_level",
        "token_count",
        "tokens_revoked",
        "refresh_revoked",
        "password_changed",
        "passenger",
        "signature_valid",
        "store_id",  # public: aamarPay's return form shows it to every payer
        "authorization_mode",
        "cookies_enabled",
    ],
)
def test_keys_that_merely_contain_a_secret_word_are_kept(key: str) -> None:
    assert logs.redact({key: "visible", "n": {key: 3}}) == {key: "visible", "n": {key: 3}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET /trxcheck?request_id=t1&store_id=s&signature_key=dbb748&type=json",
            "GET /trxcheck?request_id=t1&store_id=s&signature_key=***&type=json",
        ),
        ("password=hunter2 token=abc&new_password=x", "password=*** token=***&new_password=***"),
        ("form: current_password=a%20b&username=alice", "form: current_password=***&username=alice"),
        (f"refresh {JWT} done", "refresh *** done"),
        ("Authorization: Bearer opaque-credential, next", "Authorization: Bearer ***, next"),
        ("token_count=3 access_level=admin", "token_count=3 access_level=admin"),
        ("eyJust a word. eyJ another", "eyJust a word. eyJ another"),
    ],
)
def test_secrets_inside_text_are_cut(text: str, expected: str) -> None:
    assert logs.redact(text) == expected
    assert logs.redact({"message": text}) == {"message": expected}


def test_a_jwt_under_an_innocent_key_is_still_masked() -> None:
    assert logs.redact({"note": JWT, "list": [JWT]}) == {"note": "***", "list": ["***"]}


def test_activity_metadata_keeps_its_other_keys(aws_resources: object) -> None:
    entry = activity.entry(
        "login",
        "u" * 32,
        metadata={"access_level": "staff", "token_count": 2, "password": "hunter2hunter2", "refresh": JWT},
    )
    assert entry.metadata == {"access_level": "staff", "token_count": 2, "password": "***", "refresh": "***"}

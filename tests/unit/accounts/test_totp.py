"""RFC 6238 appendix B vectors (SHA-1, 8 digits there; the last 6 digits here) and the window."""

from __future__ import annotations

import base64

import pytest

from chalicelib.accounts import totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode("ascii")


@pytest.mark.parametrize(
    ("unix_time", "eight_digits"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_vectors(unix_time: int, eight_digits: str) -> None:
    assert totp.code_at(RFC_SECRET, totp.current_step(unix_time)) == eight_digits[-6:]


def test_previous_and_next_step_accepted_but_not_two_away() -> None:
    secret = totp.new_secret()
    now = 1_700_000_015.0
    step = totp.current_step(now)
    for delta in (-1, 0, 1):
        assert totp.matching_step(secret, totp.code_at(secret, step + delta), now) == step + delta
    for delta in (-2, 2):
        code = totp.code_at(secret, step + delta)
        if code not in {totp.code_at(secret, step + d) for d in (-1, 0, 1)}:
            assert totp.matching_step(secret, code, now) is None


def test_another_secrets_code_and_malformed_input_refused() -> None:
    mine, theirs = totp.new_secret(), totp.new_secret()
    now = 1_700_000_000.0
    theirs_code = totp.code_at(theirs, totp.current_step(now))
    if theirs_code not in {totp.code_at(mine, totp.current_step(now) + d) for d in (-1, 0, 1)}:
        assert totp.matching_step(mine, theirs_code, now) is None
    for bad in ("", "12345", "1234567", "12345a", "١٢٣٤٥٦", " 12345"):
        assert totp.matching_step(mine, bad, now) is None


def test_secret_is_160_bits_base32_and_uri_carries_parameters() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20
    uri = totp.otpauth_uri(secret, "a@example.com", "Uploads")
    assert uri.startswith("otpauth://totp/Uploads%3Aa%40example.com?secret=" + secret)
    assert "digits=6" in uri and "period=30" in uri and "algorithm=SHA1" in uri

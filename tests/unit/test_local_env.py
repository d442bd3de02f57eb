"""`LOCALSTACK_HOST` means what LocalStack's own tools (localstack-client) take it to mean."""

from __future__ import annotations

import os

import pytest

from local import env


@pytest.mark.parametrize(
    ("host", "use_ssl", "endpoint"),
    [
        ("localstack", None, "http://localstack:4566"),
        ("localhost.localstack.cloud:4510", None, "http://localhost.localstack.cloud:4510"),
        ("ls:4566", "1", "https://ls:4566"),
    ],
)
def test_localstack_host_becomes_the_endpoint(
    monkeypatch: pytest.MonkeyPatch, host: str, use_ssl: str | None, endpoint: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # empty counts as unset; restored afterwards
    monkeypatch.setenv("LOCALSTACK_HOST", host)
    if use_ssl:
        monkeypatch.setenv("USE_SSL", use_ssl)
    env.apply_defaults()
    assert os.environ["AWS_ENDPOINT_URL"] == endpoint


def test_an_explicit_endpoint_wins_over_localstack_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://elsewhere:1234")
    monkeypatch.setenv("LOCALSTACK_HOST", "localstack")
    env.apply_defaults()
    assert os.environ["AWS_ENDPOINT_URL"] == "http://elsewhere:1234"

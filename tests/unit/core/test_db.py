"""The data-access seam: get-or-404 and the conditional update that returns the item either way."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.accounts import accounts
from chalicelib.core import clock, db, errors
from chalicelib.core.models import User


def test_get_or_404_finds_the_item(aws_resources: dict[str, Any]) -> None:
    stored = accounts.create_user("alice", "alice@example.com", "a long enough password")
    assert db.get_or_404(User, stored.id, "No such user.", consistent_read=True).username == "alice"


@pytest.mark.parametrize(
    "key", ["0" * 32, "not-an-id", "x" * 5000, ""], ids=["unknown-id", "malformed", "oversize", "empty"]
)
def test_get_or_404_answers_404_for_unknown_and_malformed_keys(aws_resources: dict[str, Any], key: str) -> None:
    with pytest.raises(errors.NotFound, match="No such user"):
        db.get_or_404(User, key, "No such user.")


def test_update_returning_item_returns_the_new_item_or_the_old_one(aws_resources: dict[str, Any]) -> None:
    stored = accounts.create_user("alice", "alice@example.com", "a long enough password")
    unset = User.mfa_pending_secret.does_not_exist()
    updated, won = db.update_returning_item(
        User, stored.id, actions=[User.mfa_pending_secret.set("first")], condition=unset
    )
    assert won and updated is not None and updated.mfa_pending_secret == "first"
    again, won = db.update_returning_item(
        User, stored.id, actions=[User.mfa_pending_secret.set("second")], condition=unset
    )
    assert not won and again is not None and again.mfa_pending_secret == "first"
    missing, won = db.update_returning_item(
        User, clock.new_id(), actions=[User.mfa_pending_secret.set("x")], condition=User.id.exists()
    )
    assert (missing, won) == (None, False)


def test_every_table_connection_makes_its_client_from_the_one_botocore_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pynamodb would make a botocore session per model (each parsing botocore's files again)."""
    import botocore.session
    from pynamodb.connection.base import Connection as PynamoConnection

    from chalicelib.core import aws, models

    aws.client("sts")  # the one session exists before the first connection asks for it
    monkeypatch.setattr(botocore.session, "get_session", lambda *args: pytest.fail("a session of its own"))
    created: list[str] = []
    original = aws.create_client

    def create_client(service: str, *args: Any, **kwargs: Any) -> Any:
        created.append(service)
        return original(service, *args, **kwargs)

    monkeypatch.setattr(aws, "create_client", create_client)
    connections = [PynamoConnection(region="us-east-1") for _ in models.ALL_MODELS]  # fresh: no client yet
    assert all(connection.client is not None for connection in connections)
    assert created == ["dynamodb"] * len(models.ALL_MODELS)

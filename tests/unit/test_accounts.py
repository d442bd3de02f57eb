"""Accounts and auth: every rule of the contract, good and bad paths."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import timedelta

import jwt
import pytest

from chalicelib import clock
from chalicelib.config import app_secrets
from tests.unit.conftest import Api


def _error_code(response) -> str:
    return response.data["error"]["code"]


def test_register_returns_user_without_secrets(api: Api) -> None:
    response = api.register("Alice", email="Alice@Example.COM")
    assert response.status_code == 201
    user = response.data["user"]
    assert set(user) == {"id", "username", "email", "is_staff", "is_superuser", "has_paid", "created_at"}
    assert user["email"] == "alice@example.com"
    assert user["username"] == "Alice"
    assert (user["is_staff"], user["is_superuser"], user["has_paid"]) == (False, False, False)
    assert user["created_at"].endswith("Z")
    assert len(user["id"]) == 32
    assert "password" not in response.body.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@b.co", "password": "longenough"}, "username"),
        ({"username": "ab", "email": "a@b.co", "password": "longenough"}, "username"),
        ({"username": "bad name!", "email": "a@b.co", "password": "longenough"}, "username"),
        ({"username": "x" * 151, "email": "a@b.co", "password": "longenough"}, "username"),
        ({"username": 123, "email": "a@b.co", "password": "longenough"}, "username"),
        ({"username": "bob", "email": "not-an-email", "password": "longenough"}, "email"),
        ({"username": "bob", "email": ["a@b.co"], "password": "longenough"}, "email"),
        ({"username": "bob", "email": "a@b.co", "password": "short"}, "password"),
        ({"username": "bob", "email": "a@b.co", "password": "a" * 73}, "password"),
        ({"username": "bob", "email": "a@b.co", "password": "ব" * 25}, "password"),  # 75 bytes
        ({"username": "bob", "email": "a@b.co", "password": "longenough", "password2": "different"}, "password2"),
    ],
)
def test_register_rejects_invalid_fields(api: Api, body: dict, field: str) -> None:
    response = api.call("POST", "/api/register/", body)
    assert response.status_code == 400
    assert _error_code(response) == "validation_error"
    assert field in response.data["error"]["details"]


def test_password_of_exactly_72_bytes_is_accepted(api: Api) -> None:
    password = "ব" * 24  # 72 bytes of UTF-8
    assert api.register("bengali", password=password).status_code == 201
    assert api.login("bengali", password)["access"]


def test_duplicate_username_and_email_are_refused_case_insensitively(api: Api) -> None:
    assert api.register("alice").status_code == 201
    taken = api.register("ALICE", email="other@example.com")
    assert (taken.status_code, _error_code(taken)) == (409, "username_taken")
    email_taken = api.register("bob", email="ALICE@example.com")
    assert (email_taken.status_code, _error_code(email_taken)) == (409, "email_taken")


def test_concurrent_registrations_create_exactly_one_account(api: Api, atomic_dynamodb: None) -> None:
    from chalicelib import accounts

    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            accounts.create_user("racer", f"racer{i}@example.com", "longenough")
            outcomes.append("created")
        except Exception as error:
            outcomes.append(getattr(error, "code", repr(error)))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("created") == 1
    assert set(outcomes) - {"created"} == {"username_taken"}


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "malformed_json"),
        ("[1, 2]", "application/json", 400, "validation_error"),
        ("username=a&password=b", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("", "application/json", 400, "malformed_json"),
    ],
)
def test_bad_bodies_get_the_error_shape(api: Api, raw: str, content_type: str, status: int, code: str) -> None:
    response = api.call("POST", "/api/register/", raw, **{"Content-Type": content_type})
    assert response.status_code == status
    assert set(response.data) == {"error"}
    assert response.data["error"]["code"] == code
    assert response.data["error"]["message"]


def test_login_by_username_or_email_and_me(api: Api) -> None:
    api.register("alice")
    tokens = api.login("alice")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    by_email = api.login("ALICE@example.com")
    me = api.call("GET", "/api/me/", token=by_email["access"])
    assert me.status_code == 200
    assert me.data["user"]["username"] == "alice"


def test_unknown_user_and_wrong_password_answer_alike(api: Api) -> None:
    api.register("alice")
    wrong = api.call("POST", "/api/login/", {"username": "alice", "password": "wrong password"})
    unknown = api.call("POST", "/api/login/", {"username": "nobody", "password": "wrong password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.data == unknown.data
    assert _error_code(wrong) == "invalid_credentials"


def test_repeated_failures_lock_the_identifier(api: Api) -> None:
    api.register("alice")
    for _ in range(5):
        assert api.call("POST", "/api/login/", {"username": "alice", "password": "wrong password"}).status_code == 401
    locked = api.call("POST", "/api/login/", {"username": "alice", "password": "correct horse"})
    assert (locked.status_code, _error_code(locked)) == (429, "too_many_attempts")
    # Another account is not affected.
    api.register("bob")
    assert api.login("bob")["access"]


def test_lockout_ends_when_the_window_expires(api: Api) -> None:
    from chalicelib.models import RateLimit

    api.register("alice")
    for _ in range(5):
        api.call("POST", "/api/login/", {"username": "alice", "password": "wrong password"})
    item = RateLimit.get("login#alice")
    item.update(actions=[RateLimit.expires_at.set(clock.now() - timedelta(seconds=1))])
    assert api.login("alice")["access"]


def test_overlong_login_password_is_a_plain_401(api: Api) -> None:
    api.register("alice")
    response = api.call("POST", "/api/login/", {"username": "alice", "password": "x" * 500})
    assert (response.status_code, _error_code(response)) == (401, "invalid_credentials")


def test_refresh_rotates_and_refuses_reuse(api: Api) -> None:
    api.register("alice")
    first = api.login("alice")
    rotated = api.call("POST", "/api/refresh/", {"refresh": first["refresh"]})
    assert rotated.status_code == 200
    assert rotated.data["refresh"] != first["refresh"]
    reused = api.call("POST", "/api/refresh/", {"refresh": first["refresh"]})
    assert (reused.status_code, _error_code(reused)) == (401, "invalid_token")
    assert api.call("GET", "/api/me/", token=rotated.data["access"]).status_code == 200


def test_access_token_is_not_a_refresh_token(api: Api) -> None:
    api.register("alice")
    tokens = api.login("alice")
    assert api.call("POST", "/api/refresh/", {"refresh": tokens["access"]}).status_code == 401
    assert api.call("GET", "/api/me/", token=tokens["refresh"]).status_code == 401


def test_logout_revokes_access_and_refresh(api: Api) -> None:
    api.register("alice")
    tokens = api.login("alice")
    response = api.call("POST", "/api/logout/", {"refresh": tokens["refresh"]}, token=tokens["access"])
    assert response.status_code == 204
    assert api.call("GET", "/api/me/", token=tokens["access"]).status_code == 401
    assert api.call("POST", "/api/refresh/", {"refresh": tokens["refresh"]}).status_code == 401
    assert api.call("POST", "/api/logout/", token=tokens["access"]).status_code == 401


def _forge(payload: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key or app_secrets().jwt_signing_key, algorithm=algorithm)


def _claims(user_id: str, **overrides) -> dict:
    now = clock.now()
    claims = {"sub": user_id, "jti": clock.new_id(), "typ": "access", "iat": now, "exp": now + timedelta(minutes=5)}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_bad_tokens_are_401(api: Api) -> None:
    user_id = api.register("alice").data["user"]["id"]
    assert api.call("GET", "/api/me/", token=_forge(_claims(user_id))).status_code == 200
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"sub": user_id, "typ": "access"}).encode()).rstrip(b"=").decode()
    bad_tokens = [
        _forge(_claims(user_id, exp=clock.now() - timedelta(seconds=5))),
        _forge(_claims(user_id), key="some-other-key-that-is-long-enough-0123"),
        _forge(_claims(user_id, jti=None)),
        _forge(_claims(user_id, typ=None)),
        _forge(_claims("no-such-user")),
        f"{header}.{body}.",
        "garbage",
        _forge(_claims(user_id))[:-3] + "abc",
    ]
    for token in bad_tokens:
        response = api.call("GET", "/api/me/", token=token)
        assert response.status_code == 401, token
        assert _error_code(response) == "invalid_token"


def test_missing_or_malformed_authorization_header(api: Api) -> None:
    assert _error_code(api.call("GET", "/api/me/")) == "unauthorized"
    response = api.call("GET", "/api/me/", Authorization="Basic abc")
    assert response.status_code == 401


def test_activity_lists_own_auth_events_newest_first(api: Api) -> None:
    api.register("alice")
    api.call("POST", "/api/login/", {"username": "alice", "password": "wrong password"})
    token = api.login("alice")["access"]
    api.signed_up("bob")
    time.sleep(0.002)
    page = api.call("GET", "/api/activity/?limit=2", token=token)
    assert page.status_code == 200
    actions = [item["action"] for item in page.data["items"]]
    assert actions == ["login", "login_failed"]
    rest = api.call("GET", f"/api/activity/?limit=2&cursor={page.data['next_cursor']}", token=token)
    assert [item["action"] for item in rest.data["items"]] == ["user_registered"]
    assert "wrong password" not in json.dumps(page.data) + json.dumps(rest.data)


def test_activity_cursor_of_another_user_is_refused(api: Api) -> None:
    alice = api.signed_up("alice")
    bob = api.signed_up("bob")
    page = api.call("GET", "/api/activity/?limit=1", token=alice)
    response = api.call("GET", f"/api/activity/?cursor={page.data['next_cursor']}", token=bob)
    assert (response.status_code, _error_code(response)) == (400, "invalid_cursor")


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1"])
def test_bad_limits_are_400(api: Api, limit: str) -> None:
    token = api.signed_up()
    response = api.call("GET", f"/api/activity/?limit={limit}", token=token)
    assert (response.status_code, _error_code(response)) == (400, "invalid_limit")


def test_health_and_unknown_method(api: Api) -> None:
    assert api.call("GET", "/api/health/").data == {"status": "ok"}
    response = api.call("DELETE", "/api/me/")
    assert response.status_code == 405
    assert _error_code(response) == "method_not_allowed"


def test_make_user_creates_then_updates_role(aws_resources) -> None:
    from chalicelib import accounts

    user, created = accounts.upsert_user("admin", "longenough1", "superuser")
    assert created and user.is_superuser and user.is_staff
    user, created = accounts.upsert_user("admin", "longenough2", "staff")
    assert not created
    from chalicelib.models import User

    stored = User.get(user.id)
    assert stored.is_staff and not stored.is_superuser

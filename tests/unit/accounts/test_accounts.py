"""Accounts and auth: every rule of the contract, good and bad paths."""

from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta

import jwt
import pytest

from chalicelib.core import clock, db
from chalicelib.core.config import app_secrets
from tests.unit.conftest import Api


def _error_code(response) -> str:
    return response.data["error"]["code"]


def test_register_returns_user_without_secrets(api: Api) -> None:
    response = api.register("Alice", email="Alice@Example.COM")
    assert response.status_code == 201
    user = response.data["user"]
    assert set(user) == {
        "id",
        "username",
        "email",
        "email_verified",
        "is_staff",
        "is_superuser",
        "has_paid",
        "mfa_enabled",
        "passkeys",
        "created_at",
    }
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


def test_duplicate_usernames_are_refused_and_an_unverified_email_blocks_nobody(api: Api) -> None:
    assert api.register("alice").status_code == 201
    taken = api.register("ALICE", email="other@example.com")
    assert (taken.status_code, _error_code(taken)) == (409, "username_taken")
    # alice has not verified her address: it blocks nobody (a verified one does: test_verification.py).
    assert api.register("bob", email="ALICE@example.com").status_code == 201


def test_concurrent_registrations_create_exactly_one_account(api: Api, atomic_dynamodb: None) -> None:
    from chalicelib.accounts import accounts

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


def _verified(username: str, email: str | None = None) -> None:
    """An account whose email is verified (as `make user` creates them)."""
    from chalicelib.accounts import accounts

    accounts.create_user(username, email or f"{username}@example.com", "correct horse", verified=True)


def test_login_by_username_or_email_and_me(api: Api) -> None:
    _verified("alice")
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
    from chalicelib.core.models import RateLimit

    user_id = api.register("alice").data["user"]["id"]
    for _ in range(5):
        api.call("POST", "/api/login/", {"username": "alice", "password": "wrong password"})
    item = RateLimit.get(f"login#user#{user_id}")
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


def test_make_user_creates_then_updates_role(aws_resources) -> None:
    from chalicelib.accounts import accounts

    user, created = accounts.upsert_user("admin", "longenough1", "superuser")
    assert created and user.is_superuser and user.is_staff
    user, created = accounts.upsert_user("admin", "longenough2", "staff")
    assert not created
    from chalicelib.core.models import User

    stored = User.get(user.id)
    assert stored.is_staff and not stored.is_superuser


# --- lockout under abuse -------------------------------------------------------------------


def _login(username: str, password: str, client_ip: str = "198.51.100.7") -> str:
    """`accounts.login` straight, answering "ok" or the error code."""
    from chalicelib.accounts import accounts
    from chalicelib.core import errors

    try:
        accounts.login({"username": username, "password": password}, client_ip=client_ip)
        return "ok"
    except errors.ApiError as error:
        return error.code


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every bcrypt comparison the app makes."""
    import bcrypt

    checks: list[bool] = []
    checkpw = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        checks.append(True)
        return checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return checks


def test_thirty_parallel_wrong_guesses_get_five_password_checks(
    api: Api, atomic_dynamodb: None, password_checks: list[bool]
) -> None:
    api.register("alice")
    barrier = threading.Barrier(30)
    outcomes: list[str] = []

    def guess(i: int) -> None:
        barrier.wait()
        outcomes.append(_login("alice", f"wrong guess {i}"))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(password_checks) == 5
    assert sorted(outcomes) == ["invalid_credentials"] * 5 + ["too_many_attempts"] * 25


def test_lockout_counts_per_account_whichever_identifier_names_it(api: Api) -> None:
    _verified("alice")
    for identifier in ("alice", "ALICE@example.com", "alice", "alice@example.com", "Alice"):
        assert _login(identifier, "wrong password") == "invalid_credentials"
    assert _login("alice@example.com", "correct horse") == "too_many_attempts"
    assert _login("alice", "correct horse", client_ip="203.0.113.1") == "too_many_attempts"


def test_unknown_identifiers_are_limited_per_client_address(api: Api, password_checks: list[bool]) -> None:
    api.register("alice")
    for i in range(5):
        assert _login(f"nobody{i}", "wrong password", client_ip="203.0.113.9") == "invalid_credentials"
    assert _login("someone-else", "wrong password", client_ip="203.0.113.9") == "too_many_attempts"
    assert len(password_checks) == 5  # the locked attempt spent no bcrypt time
    assert _login("someone-else", "wrong password", client_ip="203.0.113.10") == "invalid_credentials"
    assert _login("alice", "correct horse", client_ip="203.0.113.9") == "ok"  # accounts count on their own


def test_unknown_user_and_wrong_password_cost_one_password_check_each(api: Api, password_checks: list[bool]) -> None:
    api.register("alice")
    assert _login("alice", "wrong password") == "invalid_credentials"
    assert _login("nobody", "wrong password") == "invalid_credentials"
    assert len(password_checks) == 2


def test_a_successful_login_resets_the_count(api: Api) -> None:
    api.register("alice")
    for _ in range(4):
        assert _login("alice", "wrong password") == "invalid_credentials"
    for _ in range(6):
        assert _login("alice", "correct horse") == "ok"
    assert _login("alice", "wrong password") == "invalid_credentials"


def test_a_login_whose_window_stays_busy_still_succeeds_and_is_recorded(api: Api) -> None:
    """Other attempts updating the account's window through every retry of the login's
    transaction: the login still answers 200 and its entry is saved; the window stays."""
    from tests.unit.conflicts import CONFLICT, transaction_conflicts

    token = api.signed_up("alice")
    assert _login("alice", "wrong password") == "invalid_credentials"
    with transaction_conflicts(1) as injected:
        assert _login("alice", "correct horse") == "ok"  # retried once, then committed
    assert injected.count(CONFLICT) == 1
    with transaction_conflicts(db.CONFLICT_ATTEMPTS) as injected:
        assert _login("alice", "correct horse") == "ok"
    assert injected.count(CONFLICT) == db.CONFLICT_ATTEMPTS
    actions = [entry["action"] for entry in api.call("GET", "/api/activity/", token=token).data["items"]]
    assert actions[:2] == ["login", "login"]
    for _ in range(4):  # the last login's attempt still counts in the window it could not clear
        assert _login("alice", "wrong password") == "invalid_credentials"
    assert _login("alice", "wrong password") == "too_many_attempts"


# --- one namespace for login identifiers ----------------------------------------------------


def test_a_username_equal_to_an_email_or_the_reverse_is_refused(api: Api) -> None:
    _verified("carol")
    shadow = api.register("Carol@Example.com", email="mallory@example.com")
    assert (shadow.status_code, _error_code(shadow)) == (409, "username_taken")
    assert api.register("dan", email="dan@example.com").status_code == 201  # unverified: still dan's email
    unverified_shadow = api.register("Dan@Example.com", email="mallory@example.com")
    assert (unverified_shadow.status_code, _error_code(unverified_shadow)) == (409, "username_taken")
    assert api.register("dave@example.org", email="dave2@example.org").status_code == 201
    reverse = api.register("erin", email="DAVE@example.org")
    assert (reverse.status_code, _error_code(reverse)) == (409, "email_taken")
    assert api.login("carol@example.com")["access"]  # carol's email login still names carol
    own = api.register("frank@example.net", email="frank@example.net")  # one's own email as username
    assert own.status_code == 201
    assert api.login("frank@example.net")["access"]


def test_racing_registrations_cannot_both_take_one_identifier(api: Api, atomic_dynamodb: None) -> None:
    from chalicelib.accounts import accounts

    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def attempt(username: str, email: str) -> None:
        barrier.wait()
        try:
            accounts.create_user(username, email, "longenough")
            outcomes.append("created")
        except Exception as error:
            outcomes.append(getattr(error, "code", repr(error)))

    threads = [
        threading.Thread(target=attempt, args=("x@example.com", "first@example.com")),
        threading.Thread(target=attempt, args=("second", "x@example.com")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("created") == 1
    assert set(outcomes) - {"created"} <= {"username_taken", "email_taken"}


@pytest.mark.parametrize("username", ["alice\n", "ålice", "al ice", "alice\u0660", "ab", "a" * 151, "bob/x"])
def test_usernames_are_ascii_and_matched_whole(api: Api, username: str) -> None:
    response = api.register(username, email="someone@example.com")
    assert (response.status_code, _error_code(response)) == (400, "validation_error")
    assert "username" in response.data["error"]["details"]


def test_registration_survives_a_transaction_conflict(api: Api) -> None:
    from tests.unit.conflicts import CONFLICT, transaction_conflicts

    with transaction_conflicts(1) as injected:
        assert api.register("alice").status_code == 201
    assert injected.count(CONFLICT) == 1
    with transaction_conflicts(db.CONFLICT_ATTEMPTS):
        busy = api.register("bob")
    assert (busy.status_code, _error_code(busy)) == (409, "conflict")
    assert api.register("bob").status_code == 201


# --- password change and session epochs -----------------------------------------------------


def _change(api: Api, token: str, current: str, new: str) -> object:
    body = {"current_password": current, "new_password": new}
    return api.call("POST", "/api/password/change/", body, token)


def test_password_change_ends_every_other_session(api: Api) -> None:
    api.register("alice")
    here, elsewhere = api.login("alice"), api.login("alice")
    changed = _change(api, here["access"], "correct horse", "battery staple")
    assert changed.status_code == 200, changed.data
    assert set(changed.data) >= {"access", "refresh", "token_type", "expires_in"}

    for stale in (here["access"], elsewhere["access"]):
        assert api.call("GET", "/api/me/", token=stale).status_code == 401
    for stale in (here["refresh"], elsewhere["refresh"]):
        refused = api.call("POST", "/api/refresh/", {"refresh": stale})
        assert (refused.status_code, _error_code(refused)) == (401, "invalid_token")
    assert api.call("GET", "/api/me/", token=changed.data["access"]).status_code == 200
    rotated = api.call("POST", "/api/refresh/", {"refresh": changed.data["refresh"]})
    assert rotated.status_code == 200
    assert api.call("GET", "/api/me/", token=rotated.data["access"]).status_code == 200
    bad_old = api.call("POST", "/api/login/", {"username": "alice", "password": "correct horse"})
    assert bad_old.status_code == 401
    assert api.login("alice", "battery staple")["access"]


def test_password_change_refuses_a_wrong_current_password_and_bad_input(api: Api) -> None:
    token = api.signed_up("alice")
    wrong = _change(api, token, "not my password", "battery staple")
    assert (wrong.status_code, _error_code(wrong)) == (401, "invalid_credentials")
    assert api.call("GET", "/api/me/", token=token).status_code == 200  # nothing ended
    for body in (
        {"current_password": "correct horse"},
        {"current_password": "correct horse", "new_password": "short"},
        {"current_password": "correct horse", "new_password": "x" * 73},
        {"current_password": 1, "new_password": "battery staple"},
    ):
        response = api.call("POST", "/api/password/change/", body, token)
        assert (response.status_code, _error_code(response)) == (400, "validation_error")
    assert api.call("POST", "/api/password/change/", {}, None).status_code == 401
    assert api.login("alice")["access"]


def test_password_change_guesses_are_limited_too(api: Api) -> None:
    token = api.signed_up("alice")
    for _ in range(5):
        assert _change(api, token, "guess", "battery staple").status_code == 401
    locked = _change(api, token, "correct horse", "battery staple")
    assert (locked.status_code, _error_code(locked)) == (429, "too_many_attempts")


def test_make_user_password_reset_ends_every_session(api: Api) -> None:
    from chalicelib.accounts import accounts

    api.register("alice")
    pair = api.login("alice")
    accounts.upsert_user("alice", "a new password", "user")
    assert api.call("GET", "/api/me/", token=pair["access"]).status_code == 401
    assert api.call("POST", "/api/refresh/", {"refresh": pair["refresh"]}).status_code == 401
    assert api.login("alice", "a new password")["access"]

"""The second factor: enrolment, the code step of log-in, disabling, and every way to misuse them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from chalicelib.accounts import accounts, recovery_codes, totp
from chalicelib.core import clock
from chalicelib.core.models import Activity, User
from tests import mailbox, second_factor
from tests.concurrency import at_once
from tests.unit.conftest import Api

PASSWORD = "correct horse"


@pytest.fixture(autouse=True)
def outbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    yield tmp_path / "outbox"


def _post(api: Api, path: str, body: Any = None, token: str | None = None) -> Any:
    return api.call("POST", path, {} if body is None else body, token)


def _error(response: Any) -> tuple[int, str]:
    return response.status_code, response.data["error"]["code"]


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _enrolled(api: Api, username: str = "alice") -> tuple[second_factor.Authenticator, dict[str, Any]]:
    """A registered account with the factor on: its app, and the confirming answer."""
    assert api.register(username).status_code == 201
    return second_factor.enrol(api.post, api.login(username)["access"])


def _challenge(api: Api, username: str = "alice") -> str:
    answer = api.login(username)
    assert answer["mfa_required"] is True and set(answer) == {"mfa_required", "mfa_token", "expires_in"}
    assert answer["expires_in"] == 300
    return str(answer["mfa_token"])


def _code_step(api: Api, mfa_token: str, code: str) -> Any:
    return _post(api, "/api/login/mfa/", {"mfa_token": mfa_token, "code": code})


def _alice() -> User:
    return next(User.by_username.query("a", User.username_key == "alice"))


def _entries(user_id: str, action: str) -> list[Activity]:
    return [e for e in Activity.query(user_id) if e.action == action]


# --- enrolment -------------------------------------------------------------------------


def test_setup_answers_a_base32_secret_its_uri_and_an_inline_svg_and_changes_nothing_yet(api: Api) -> None:
    token = api.signed_up("alice")
    answer = _post(api, "/api/mfa/setup/", token=token)
    assert answer.status_code == 200
    secret, uri, svg = answer.data["secret"], answer.data["otpauth_uri"], answer.data["qr_svg"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # 160 bits
    assert (
        uri == f"otpauth://totp/PaidUpload%3Aalice?secret={secret}&issuer=PaidUpload&algorithm=SHA1&digits=6&period=30"
    )
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and "style" not in svg and "<script" not in svg
    assert api.call("GET", "/api/me/", token=token).data["user"]["mfa_enabled"] is False
    assert "access" in api.login("alice")  # not active until confirmed
    assert _alice().mfa_secret is None and _alice().mfa_pending_secret == secret


def test_a_new_setup_replaces_an_unconfirmed_one(api: Api) -> None:
    token = api.signed_up("alice")
    first = _post(api, "/api/mfa/setup/", token=token).data["secret"]
    second = _post(api, "/api/mfa/setup/", token=token).data["secret"]
    assert first != second
    stale = _post(api, "/api/mfa/confirm/", {"code": totp.code_at(first, totp.current_step())}, token)
    assert _error(stale) == (400, "invalid_code")
    assert (
        _post(api, "/api/mfa/confirm/", {"code": totp.code_at(second, totp.current_step())}, token).status_code == 200
    )


def _no_code_of(secret: str) -> str:
    """Six digits that are the code of no step near now (the first such, so never a guess)."""
    near = {totp.code_at(secret, totp.current_step() + offset) for offset in range(-3, 4)}
    return next(code for code in (f"{n:06d}" for n in range(10)) if code not in near)


@pytest.mark.parametrize("code", ["six digits of no step", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "0000000000"])
def test_confirm_refuses_a_wrong_code(api: Api, code: str) -> None:
    token = api.signed_up("alice")
    secret = _post(api, "/api/mfa/setup/", token=token).data["secret"]
    code = _no_code_of(secret) if code == "six digits of no step" else code
    assert _error(_post(api, "/api/mfa/confirm/", {"code": code}, token)) == (400, "invalid_code")
    assert api.call("GET", "/api/me/", token=token).data["user"]["mfa_enabled"] is False


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": 123456}, {"code": "1" * 65}])
def test_confirm_refuses_a_malformed_body(api: Api, body: dict[str, Any]) -> None:
    token = api.signed_up("alice")
    _post(api, "/api/mfa/setup/", token=token)
    assert _error(_post(api, "/api/mfa/confirm/", body, token)) == (400, "validation_error")


def test_confirm_without_a_setup_is_an_invalid_code(api: Api) -> None:
    token = api.signed_up("alice")
    assert _error(_post(api, "/api/mfa/confirm/", {"code": "123456"}, token)) == (400, "invalid_code")


def test_confirm_turns_it_on_shows_ten_codes_once_and_keeps_only_their_hashes(api: Api) -> None:
    assert api.register("alice").status_code == 201
    elsewhere = api.login("alice")
    app, confirmed = second_factor.enrol(api.post, api.login("alice")["access"])
    codes = confirmed["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    user = _alice()
    assert user.mfa_enabled is True and user.mfa_pending_secret is None and user.mfa_secret == app.secret
    assert user.mfa_recovery_hashes == {recovery_codes.digest(c) for c in codes}
    assert not any(c in str(user.attribute_values) for c in codes)
    assert len(_entries(user.id, "mfa_enabled")) == 1
    assert app.secret not in str([e.metadata for e in Activity.query(user.id)])
    # This session proved the factor: fresh tokens marked so; every other session ended.
    assert _claims(confirmed["access"])["mfa"] is True and _claims(confirmed["refresh"])["mfa"] is True
    assert api.call("GET", "/api/me/", token=confirmed["access"]).data["user"]["mfa_enabled"] is True
    assert _error(api.call("GET", "/api/me/", token=elsewhere["access"])) == (401, "invalid_token")
    assert _error(_post(api, "/api/refresh/", {"refresh": elsewhere["refresh"]})) == (401, "invalid_token")
    # On: a second setup or confirm is refused until it is turned off.
    assert _error(_post(api, "/api/mfa/setup/", token=confirmed["access"])) == (409, "mfa_already_enabled")
    assert _error(_post(api, "/api/mfa/confirm/", {"code": app.code()}, confirmed["access"])) == (
        409,
        "mfa_already_enabled",
    )


def test_parallel_confirms_enable_once(api: Api, atomic_dynamodb: None) -> None:
    token = api.signed_up("alice")
    secret = _post(api, "/api/mfa/setup/", token=token).data["secret"]
    code = totp.code_at(secret, totp.current_step())
    answers = at_once(6, lambda _: _post(api, "/api/mfa/confirm/", {"code": code}, token).status_code)
    # The losers met the winner's condition (400), its new state (409) or its new epoch (401).
    assert answers.count(200) == 1 and set(answers) - {200} <= {400, 401, 409}
    assert len(_entries(_alice().id, "mfa_enabled")) == 1


# --- log-in with a code ----------------------------------------------------------------


def test_login_asks_for_the_code_and_the_code_step_answers_marked_tokens(api: Api) -> None:
    app, _ = _enrolled(api)
    answer = _code_step(api, _challenge(api), app.code())
    assert answer.status_code == 200
    assert _claims(answer.data["access"])["mfa"] is True
    assert api.call("GET", "/api/me/", token=answer.data["access"]).status_code == 200
    rotated = _post(api, "/api/refresh/", {"refresh": answer.data["refresh"]})
    assert _claims(rotated.data["access"])["mfa"] is True  # kept through rotation
    user_id = api.call("GET", "/api/me/", token=answer.data["access"]).data["user"]["id"]
    assert [e.metadata for e in _entries(user_id, "login")][-1] == {"second_factor": "totp"}


def test_the_mfa_token_is_no_access_or_refresh_token(api: Api) -> None:
    _enrolled(api)
    mfa_token = _challenge(api)
    assert _claims(mfa_token)["typ"] == "mfa"
    for method, path in [("GET", "/api/me/"), ("GET", "/api/files/"), ("POST", "/api/mfa/setup/")]:
        assert _error(api.call(method, path, {} if method == "POST" else None, mfa_token)) == (401, "invalid_token")
    assert _error(_post(api, "/api/refresh/", {"refresh": mfa_token})) == (401, "invalid_token")
    access = api.signed_up("bob")
    assert _error(_code_step(api, access, "123456")) == (401, "invalid_token")  # nor the other way round


def test_a_code_is_accepted_once(api: Api) -> None:
    app, _ = _enrolled(api)
    code = app.code()
    assert _code_step(api, _challenge(api), code).status_code == 200
    assert _error(_code_step(api, _challenge(api), code)) == (401, "invalid_code")


def test_the_confirming_code_opens_one_session_then_no_more(api: Api) -> None:
    """Enrolment then log-in within one 30 s step (what an app user does at once) works; the
    log-in step still accepts that code once only."""
    assert api.register("alice").status_code == 201
    token = api.login("alice")["access"]
    secret = _post(api, "/api/mfa/setup/", token=token).data["secret"]
    code = totp.code_at(secret, totp.current_step())
    assert _post(api, "/api/mfa/confirm/", {"code": code}, token).status_code == 200
    assert _code_step(api, _challenge(api), code).status_code == 200
    assert _error(_code_step(api, _challenge(api), code)) == (401, "invalid_code")


def test_an_earlier_step_is_refused_after_a_later_one(api: Api) -> None:
    app, _ = _enrolled(api)
    now = totp.current_step()
    later, earlier = totp.code_at(app.secret, now + 1), totp.code_at(app.secret, now)
    assert _code_step(api, _challenge(api), later).status_code == 200
    if earlier != later:
        assert _error(_code_step(api, _challenge(api), earlier)) == (401, "invalid_code")


def test_codes_outside_the_window_are_refused(api: Api) -> None:
    app, _ = _enrolled(api)
    now = totp.current_step()
    for step in (now - 3, now + 3):
        code = totp.code_at(app.secret, step)
        if all(code != totp.code_at(app.secret, s) for s in range(now - 1, now + 2)):
            assert _error(_code_step(api, _challenge(api), code)) == (401, "invalid_code")


def test_a_code_of_another_accounts_secret_is_refused(api: Api) -> None:
    _enrolled(api, "alice")
    bobs, _ = _enrolled(api, "bob")
    assert _error(_code_step(api, _challenge(api, "alice"), bobs.code())) == (401, "invalid_code")
    bobs_token = _challenge(api, "bob")
    assert _code_step(api, bobs_token, bobs.code()).status_code == 200  # bob's code was never spent on alice


def test_after_five_wrong_codes_the_mfa_token_is_dead(api: Api) -> None:
    app, _ = _enrolled(api)
    mfa_token = _challenge(api)
    for _ in range(5):
        assert _error(_code_step(api, mfa_token, "wrong-code")) == (401, "invalid_code")
    assert _error(_code_step(api, mfa_token, app.code())) == (401, "invalid_token")
    assert _code_step(api, _challenge(api), app.code()).status_code == 200  # a new log-in starts afresh


def test_thirty_parallel_guesses_get_five_checks(api: Api, atomic_dynamodb: None) -> None:
    app, _ = _enrolled(api)
    mfa_token = _challenge(api)
    answers = at_once(30, lambda i: _error(_code_step(api, mfa_token, f"{i:06d}x")))
    assert sorted(answers).count((401, "invalid_code")) == 5
    assert sorted(answers).count((401, "invalid_token")) == 25
    assert _error(_code_step(api, mfa_token, app.code())) == (401, "invalid_token")


def test_an_mfa_token_makes_one_session(api: Api) -> None:
    app, _ = _enrolled(api)
    mfa_token = _challenge(api)
    assert _code_step(api, mfa_token, app.code()).status_code == 200
    assert _error(_code_step(api, mfa_token, app.code())) == (401, "invalid_token")
    assert _error(_code_step(api, mfa_token, app.recovery_codes[0])) == (401, "invalid_token")


def test_a_tampered_or_expired_mfa_token_is_refused(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = _enrolled(api)
    mfa_token = _challenge(api)
    head, body, signature = mfa_token.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    forged = jwt.encode({**_claims(mfa_token), "sub": "0" * 32}, "not our key", algorithm="HS256")
    for token in (tampered, forged, "not.a.token", mfa_token + "x"):
        assert _error(_code_step(api, token, app.code())) == (401, "invalid_token")
    moment = clock.now() - timedelta(minutes=6)
    with monkeypatch.context() as patch:
        patch.setattr(clock, "now", lambda: moment)
        old = _challenge(api)
    assert _error(_code_step(api, old, app.code())) == (401, "invalid_token")


def test_a_password_change_ends_a_pending_code_step(api: Api) -> None:
    app, confirmed = _enrolled(api)
    mfa_token = _challenge(api)
    body = {"current_password": PASSWORD, "new_password": "battery staple"}
    changed = _post(api, "/api/password/change/", body, confirmed["access"])
    assert changed.status_code == 200 and _claims(changed.data["access"])["mfa"] is True  # this session keeps it
    assert _error(_code_step(api, mfa_token, app.code())) == (401, "invalid_token")


def test_a_recovery_code_works_once(api: Api) -> None:
    _, confirmed = _enrolled(api)
    code = confirmed["recovery_codes"][3]
    assert _code_step(api, _challenge(api), code.lower().replace("-", " ")).status_code == 200  # retyped loosely
    assert _error(_code_step(api, _challenge(api), code)) == (401, "invalid_code")
    user = _alice()
    assert recovery_codes.digest(code) not in user.mfa_recovery_hashes and len(user.mfa_recovery_hashes) == 9
    assert [e.metadata for e in _entries(user.id, "login")][-1] == {"second_factor": "recovery_code"}


def test_parallel_requests_with_one_recovery_code_have_one_winner(api: Api, atomic_dynamodb: None) -> None:
    _, confirmed = _enrolled(api)
    code = confirmed["recovery_codes"][0]
    tokens = [_challenge(api) for _ in range(4)]  # a login each (the password window allows 5)
    answers = at_once(4, lambda i: _code_step(api, tokens[i], code).status_code)
    assert sorted(answers) == [200, 401, 401, 401]


def test_parallel_requests_with_one_totp_code_have_one_winner(api: Api, atomic_dynamodb: None) -> None:
    app, _ = _enrolled(api)
    code = app.code()
    tokens = [_challenge(api) for _ in range(4)]
    answers = at_once(4, lambda i: _code_step(api, tokens[i], code).status_code)
    assert sorted(answers) == [200, 401, 401, 401]


def test_the_password_window_stays_counted_until_the_code_step(api: Api) -> None:
    """Knowing the password alone buys at most 5 code steps of 5 guesses per lockout window."""
    _enrolled(api)
    for _ in range(5):
        _challenge(api)
    refused = api.call("POST", "/api/login/", {"username": "alice", "password": PASSWORD})
    assert _error(refused) == (429, "too_many_attempts")


def test_a_code_step_clears_the_password_window(api: Api) -> None:
    app, _ = _enrolled(api)
    for _ in range(4):
        _challenge(api)
    assert _code_step(api, _challenge(api), app.code()).status_code == 200
    assert _challenge(api)  # the window was cleared by the code step


def test_a_reset_link_still_asks_for_the_code(api: Api) -> None:
    app, _ = _enrolled(api)
    assert _post(api, "/api/password/forgot/", {"email": "alice@example.com"}).status_code == 202
    mailbox.deliver_all(api.client)
    [link] = [mailbox.links(m)[0] for m in mailbox.outbox() if "reset" in str(m["Subject"]).lower()]
    answer = _post(api, "/api/password/reset/", {"token": link, "new_password": "battery staple"})
    assert answer.status_code == 200 and answer.data["mfa_required"] is True and "access" not in answer.data
    assert _code_step(api, answer.data["mfa_token"], app.code()).status_code == 200


# --- disabling -------------------------------------------------------------------------


def test_disable_needs_the_password_and_a_code(api: Api) -> None:
    app, confirmed = _enrolled(api)
    token = confirmed["access"]
    wrong_password = _post(api, "/api/mfa/disable/", {"password": "wrong one!", "code": app.code()}, token)
    assert _error(wrong_password) == (401, "invalid_credentials")
    assert _error(_post(api, "/api/mfa/disable/", {"password": PASSWORD, "code": "000000x"}, token)) == (
        401,
        "invalid_code",
    )
    assert _error(_post(api, "/api/mfa/disable/", {"password": PASSWORD}, token)) == (400, "validation_error")
    answer = _post(api, "/api/mfa/disable/", {"password": PASSWORD, "code": app.code()}, token)
    assert answer.status_code == 204
    user = _alice()
    assert user.mfa_enabled is False and user.mfa_secret is None and user.mfa_recovery_hashes is None
    assert len(_entries(user.id, "mfa_disabled")) == 1
    assert "access" in api.login("alice")  # no code asked any more
    assert api.call("GET", "/api/me/", token=token).status_code == 200  # the session stays
    again = _post(api, "/api/mfa/disable/", {"password": PASSWORD, "code": app.code()}, token)
    assert _error(again) == (409, "mfa_not_enabled")


def test_disable_refuses_a_code_already_used_to_log_in(api: Api) -> None:
    app, _ = _enrolled(api)
    code = app.code()
    session = _code_step(api, _challenge(api), code).data
    assert _error(_post(api, "/api/mfa/disable/", {"password": PASSWORD, "code": code}, session["access"])) == (
        401,
        "invalid_code",
    )


def test_wrong_disable_attempts_lock_like_logins(api: Api) -> None:
    app, confirmed = _enrolled(api)
    for _ in range(5):
        body = {"password": PASSWORD, "code": "nope-nope"}
        assert _post(api, "/api/mfa/disable/", body, confirmed["access"]).status_code == 401
    locked = _post(api, "/api/mfa/disable/", {"password": PASSWORD, "code": app.code()}, confirmed["access"])
    assert _error(locked) == (429, "too_many_attempts")


# --- staff -----------------------------------------------------------------------------


def test_staff_routes_ask_for_a_session_that_passed_the_second_factor(api: Api) -> None:
    accounts.create_user("boss", "boss@example.com", PASSWORD, role="superuser")
    before = api.login("boss")  # no factor yet: logging in still works, to enrol
    assert "access" in before
    for method, path in [
        ("GET", "/api/admin/users/"),
        ("GET", "/api/admin/stats/"),
        ("POST", "/api/admin/users/x/staff/"),
    ]:
        answer = api.call(method, path, {"is_staff": True} if method == "POST" else None, before["access"])
        assert _error(answer) == (403, "mfa_required"), path
    app, confirmed = second_factor.enrol(api.post, before["access"])
    assert api.call("GET", "/api/admin/users/", token=confirmed["access"]).status_code == 200
    assert _error(api.call("GET", "/api/admin/users/", token=before["access"])) == (401, "invalid_token")
    # A log-in that stops at the password holds no session at all; with the code it may look.
    passed = _code_step(api, _challenge(api, "boss"), app.code()).data
    assert api.call("GET", "/api/admin/stats/", token=passed["access"]).status_code == 200
    refreshed = _post(api, "/api/refresh/", {"refresh": passed["refresh"]}).data
    assert api.call("GET", "/api/admin/stats/", token=refreshed["access"]).status_code == 200
    # Turned off: the same sessions lose the staff routes at once.
    body = {"password": PASSWORD, "code": app.code()}
    assert _post(api, "/api/mfa/disable/", body, refreshed["access"]).status_code == 204
    assert _error(api.call("GET", "/api/admin/stats/", token=refreshed["access"])) == (403, "mfa_required")


def test_a_user_who_is_not_staff_gets_forbidden_with_or_without_the_factor(api: Api) -> None:
    _, confirmed = _enrolled(api)
    assert _error(api.call("GET", "/api/admin/users/", token=confirmed["access"])) == (403, "forbidden")


def test_granting_staff_emails_the_user_to_enrol(api: Api) -> None:
    accounts.create_user("boss", "boss@example.com", PASSWORD, role="superuser")
    boss = api.staff_login("boss")["access"]
    mailbox.delete(mailbox.queued())
    target = api.register("carol").data["user"]["id"]
    User(target).update(actions=[User.language.set("bn")])
    dave = api.register("dave").data["user"]["id"]
    second_factor.enrol(api.post, api.login("dave")["access"])
    mailbox.delete(mailbox.queued())
    for user_id in (target, dave):
        assert _post(api, f"/api/admin/users/{user_id}/staff/", {"is_staff": True}, boss).status_code == 200
    assert _post(api, f"/api/admin/users/{target}/staff/", {"is_staff": True}, boss).status_code == 200  # no news
    mailbox.deliver_all(api.client)
    letters = [m for m in mailbox.outbox() if m["To"] in ("carol@example.com", "dave@example.com")]
    assert [m["To"] for m in letters] == ["carol@example.com"]  # dave has a factor already
    assert str(letters[0]["Subject"]) == "দুই-ধাপের যাচাই চালু করুন"
    assert "/dashboard/" in letters[0].get_body(("plain",)).get_content()


def test_every_admin_route_asks_for_the_second_factor(api: Api) -> None:
    """Whatever route a later change adds under /api/admin, a password-only session gets 403."""
    import app

    accounts.create_user("boss", "boss@example.com", PASSWORD, role="superuser")
    before = api.login("boss")["access"]
    routes = [
        (method, path)
        for path, entries in app.app.routes.items()
        if path.startswith("/api/admin")
        for method in entries
    ]
    assert len(routes) >= 10
    for method, path in routes:
        concrete = re.sub(r"\{\w+\}", "0" * 32, path) + "/"
        answer = api.call(method, concrete, {} if method == "POST" else None, before)
        assert _error(answer) == (403, "mfa_required"), (method, path)

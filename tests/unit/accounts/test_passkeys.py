"""Passkeys: registration, management, sign-in, and every way an assertion or a registration
is refused, with a software authenticator whose bytes we build (`tests/passkey_authenticator.py`)."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.accounts import accounts, mfa, passkey_challenges, passkeys, tokens
from chalicelib.core import clock
from chalicelib.core.models import Activity, Claim, Passkey, User
from tests import second_factor
from tests.passkey_authenticator import AT, RP_ID, UP, UV, Credential, SoftAuthenticator, b64, unb64
from tests.unit.conftest import Api


def _post(api: Api, path: str, body: Any = None, token: str | None = None) -> Any:
    return api.call("POST", path, {} if body is None else body, token)


def _error(response: Any) -> tuple[int, str]:
    return response.status_code, response.data["error"]["code"]


def _enrol(api: Api, token: str, authenticator: SoftAuthenticator, name: str = "Laptop", **how: Any) -> Any:
    options = _post(api, "/api/passkeys/register/options/", token=token)
    assert options.status_code == 200, options.data
    return _post(api, "/api/passkeys/", {"credential": authenticator.create(options.data, **how), "name": name}, token)


def _sign_in_options(api: Api, username: str | None = None) -> dict[str, Any]:
    response = _post(api, "/api/login/passkey/options/", {"username": username} if username else {})
    assert response.status_code == 200, response.data
    return dict(response.data)


def _sign_in(api: Api, assertion: dict[str, Any]) -> Any:
    return _post(api, "/api/login/passkey/", {"credential": assertion})


@pytest.fixture
def alice(api: Api) -> tuple[str, SoftAuthenticator]:
    """Alice, registered and holding one passkey; her fresh password session's access token."""
    token = api.signed_up("alice")
    authenticator = SoftAuthenticator()
    assert _enrol(api, token, authenticator).status_code == 201
    return token, authenticator


# --- registration and management --------------------------------------------------------


def test_registration_options_follow_the_contract(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    token, authenticator = alice
    options = _post(api, "/api/passkeys/register/options/", token=token).data
    assert options["rp"]["id"] == RP_ID
    assert unb64(options["user"]["id"]) == _user("alice").id.encode()
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert [item["id"] for item in options["excludeCredentials"]] == [b64(authenticator.credentials[0].credential_id)]
    assert len(unb64(options["challenge"])) >= 16
    assert options["timeout"] == 300_000


def test_a_registered_passkey_is_listed_counted_and_logged(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    token, authenticator = alice
    listed = api.call("GET", "/api/passkeys/", token=token).data
    assert listed["next_cursor"] is None
    (item,) = listed["items"]
    assert set(item) == {"id", "name", "created_at", "last_used_at"}
    assert item["name"] == "Laptop" and item["last_used_at"] is None and clock.is_id(item["id"])
    assert api.call("GET", "/api/me/", token=token).data["user"]["passkeys"] == 1
    stored = next(Passkey.query(_user("alice").id))
    assert stored.transports == {"internal"} and stored.sign_count == 0
    assert stored.credential_id == b64(authenticator.credentials[0].credential_id)
    actions = [entry.action for entry in Activity.query(_user("alice").id)]
    assert "passkey_added" in actions


def test_the_list_pages_newest_first(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    token, authenticator = alice
    assert _enrol(api, token, authenticator, name="Phone").status_code == 201
    first = api.call("GET", "/api/passkeys/?limit=1", token=token).data
    assert [item["name"] for item in first["items"]] == ["Phone"]
    second = api.call("GET", f"/api/passkeys/?limit=1&cursor={first['next_cursor']}", token=token).data
    assert [item["name"] for item in second["items"]] == ["Laptop"]


def test_removal_ends_the_passkey_and_answers_404_after(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    token, authenticator = alice
    (item,) = api.call("GET", "/api/passkeys/", token=token).data["items"]
    assert api.call("DELETE", f"/api/passkeys/{item['id']}/", token=token).status_code == 204
    assert _error(api.call("DELETE", f"/api/passkeys/{item['id']}/", token=token)) == (404, "not_found")
    assert api.call("GET", "/api/me/", token=token).data["user"]["passkeys"] == 0
    assert not list(Claim.query(passkeys.claim_key(b64(authenticator.credentials[0].credential_id))))
    assert "passkey_removed" in [entry.action for entry in Activity.query(_user("alice").id)]
    # A removed passkey signs nobody in.
    assert _error(_sign_in(api, authenticator.get(_sign_in_options(api)))) == (401, "invalid_credentials")


def test_another_users_passkey_is_not_found(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    token, _ = alice
    (item,) = api.call("GET", "/api/passkeys/", token=token).data["items"]
    bob = api.signed_up("bob")
    assert _error(api.call("DELETE", f"/api/passkeys/{item['id']}/", token=bob)) == (404, "not_found")
    assert api.call("GET", "/api/passkeys/", token=bob).data["items"] == []


def test_an_old_session_may_not_change_passkeys(
    api: Api, alice: tuple[str, SoftAuthenticator], monkeypatch: pytest.MonkeyPatch
) -> None:
    token, _ = alice
    (item,) = api.call("GET", "/api/passkeys/", token=token).data["items"]
    old = _session_proved_at(api, clock.now() - timedelta(seconds=passkeys.FRESH_SECONDS + 5), monkeypatch)
    assert _error(_post(api, "/api/passkeys/register/options/", token=old)) == (403, "reauthentication_required")
    assert _error(api.call("DELETE", f"/api/passkeys/{item['id']}/", token=old)) == (403, "reauthentication_required")
    assert api.call("GET", "/api/passkeys/", token=old).status_code == 200  # reading needs no fresh proof
    recent = _session_proved_at(api, clock.now() - timedelta(seconds=passkeys.FRESH_SECONDS - 30), monkeypatch)
    assert _post(api, "/api/passkeys/register/options/", token=recent).status_code == 200


def _session_proved_at(api: Api, moment: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Alice's access token from a password log-in at `moment`, refreshed now (a refresh keeps
    the time of the proof)."""
    monkeypatch.setattr(clock, "now", lambda: moment)
    refresh = api.login("alice")["refresh"]
    monkeypatch.undo()
    refreshed = _post(api, "/api/refresh/", {"refresh": refresh}).data
    assert tokens.decode(refreshed["access"], tokens.ACCESS).auth_time == int(moment.timestamp())
    return str(refreshed["access"])


def test_a_password_alone_cannot_add_a_second_factor_to_staff_who_have_one(api: Api) -> None:
    accounts.create_user("root", "root@example.com", "long enough", role="superuser")
    authenticator = SoftAuthenticator()
    assert _enrol(api, api.login("root", "long enough")["access"], authenticator).status_code == 201
    password_only = api.login("root", "long enough")["access"]  # root has a passkey now: a second factor
    refused = (403, "reauthentication_required")
    assert _error(_post(api, "/api/passkeys/register/options/", token=password_only)) == refused
    assert _error(_post(api, "/api/mfa/setup/", token=password_only)) == refused  # nor TOTP
    (item,) = api.call("GET", "/api/passkeys/", token=password_only).data["items"]
    assert _error(api.call("DELETE", f"/api/passkeys/{item['id']}/", token=password_only)) == refused
    with_passkey = _sign_in(api, authenticator.get(_sign_in_options(api))).data["access"]
    assert _enrol(api, with_passkey, SoftAuthenticator(), name="Key").status_code == 201


def test_an_account_with_totp_needs_the_code_first(api: Api) -> None:
    assert api.register("carol").status_code == 201
    app_codes, _ = second_factor.enrol(api.post, api.login("carol")["access"])
    mfa_token = api.login("carol")["mfa_token"]
    assert "access" not in api.login("carol")
    session = _post(api, "/api/login/mfa/", {"mfa_token": mfa_token, "code": app_codes.code()}).data
    assert _enrol(api, session["access"], SoftAuthenticator()).status_code == 201


def test_registration_refusals(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    token, authenticator = alice
    options = _post(api, "/api/passkeys/register/options/", token=token).data

    def register(credential: Any, name: Any = "Key") -> Any:
        return _post(api, "/api/passkeys/", {"credential": credential, "name": name}, token)

    assert _error(register(authenticator.create(options, origin="https://evil.example"))) == (400, "invalid_credential")
    assert _error(register(authenticator.create(options, flags=UP | AT))) == (400, "invalid_credential")  # no UV
    assert _error(register({"id": "x", "response": {}})) == (400, "invalid_credential")
    assert _error(register("not an object")) == (400, "validation_error")
    assert _error(register(authenticator.create(options), name="")) == (400, "validation_error")
    assert _error(register(authenticator.create(options), name="n" * 65)) == (400, "validation_error")
    forged = dict(options, challenge=b64(os.urandom(64)))
    assert _error(register(authenticator.create(forged))) == (400, "invalid_credential")
    login_challenge = dict(options, challenge=_sign_in_options(api)["challenge"])  # another ceremony's
    assert _error(register(authenticator.create(login_challenge))) == (400, "invalid_credential")
    used = authenticator.create(options)
    assert register(used).status_code == 201
    assert _error(register(authenticator.create(options))) == (400, "invalid_credential")  # its challenge was spent
    assert api.call("GET", "/api/me/", token=token).data["user"]["passkeys"] == 2


def test_a_challenge_issued_to_another_account_registers_nothing(
    api: Api, alice: tuple[str, SoftAuthenticator]
) -> None:
    token, authenticator = alice
    bobs_options = _post(api, "/api/passkeys/register/options/", token=api.signed_up("bob")).data
    answer = _post(api, "/api/passkeys/", {"credential": authenticator.create(bobs_options), "name": "K"}, token)
    assert _error(answer) == (400, "invalid_credential")


def test_a_credential_registered_anywhere_is_refused_again(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    token, authenticator = alice
    options = _post(api, "/api/passkeys/register/options/", token=token).data
    again = authenticator.create(options)
    first = authenticator.credentials[0]
    again["id"] = again["rawId"] = b64(first.credential_id)  # the same id, re-sent in a new attestation
    attestation = cbor2.loads(unb64(again["response"]["attestationObject"]))
    auth_data = attestation["authData"]
    new_id = authenticator.credentials[-1].credential_id
    attestation["authData"] = auth_data.replace(new_id, first.credential_id)
    again["response"]["attestationObject"] = b64(cbor2.dumps(attestation))
    answer = _post(api, "/api/passkeys/", {"credential": again, "name": "Twin"}, token)
    assert _error(answer) == (400, "invalid_credential")
    assert "registered already" in answer.data["error"]["message"]


def test_at_most_ten_passkeys(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    token, authenticator = alice
    options = [_post(api, "/api/passkeys/register/options/", token=token).data for _ in range(10)]
    for n in range(passkeys.MAX_PASSKEYS - 1):
        assert _post(api, "/api/passkeys/", {"credential": authenticator.create(options[n]), "name": f"k{n}"}, token)
    late = _post(api, "/api/passkeys/", {"credential": authenticator.create(options[9]), "name": "late"}, token)
    assert _error(late) == (409, "too_many_passkeys")
    assert _error(_post(api, "/api/passkeys/register/options/", token=token)) == (409, "too_many_passkeys")
    assert api.call("GET", "/api/me/", token=token).data["user"]["passkeys"] == passkeys.MAX_PASSKEYS


# --- sign-in --------------------------------------------------------------------------


def test_discoverable_sign_in_passes_the_second_factor(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    _, authenticator = alice
    options = _sign_in_options(api)
    assert options["rpId"] == RP_ID and options["userVerification"] == "required"
    assert options.get("allowCredentials", []) == []
    answer = _sign_in(api, authenticator.get(options))
    assert answer.status_code == 200, answer.data
    assert tokens.decode(answer.data["access"], tokens.ACCESS).mfa is True
    assert api.call("GET", "/api/me/", token=answer.data["access"]).data["user"]["username"] == "alice"
    stored = next(Passkey.query(_user("alice").id))
    assert stored.sign_count == 1 and stored.last_used_at is not None
    logins = [e for e in Activity.query(_user("alice").id) if e.action == "login"]
    assert logins[-1].metadata["method"] == "passkey"


def test_username_first_lists_the_accounts_passkeys(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    _, authenticator = alice
    options = _sign_in_options(api, "alice")
    assert [item["id"] for item in options["allowCredentials"]] == [b64(authenticator.credentials[0].credential_id)]
    assert options["allowCredentials"][0]["transports"] == ["internal"]
    assert _sign_in(api, authenticator.get(options)).status_code == 200
    # The name is matched as at a password log-in (case-insensitive).
    assert _sign_in_options(api, "ALICE")["allowCredentials"] == options["allowCredentials"]


def test_options_look_alike_whether_or_not_the_username_exists(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    api.signed_up("bob")  # an account without passkeys
    known, nobody, bob = _sign_in_options(api, "alice"), _sign_in_options(api, "nobody"), _sign_in_options(api, "bob")
    assert set(known) == set(nobody) == set(bob)
    assert len(nobody["allowCredentials"]) == len(bob["allowCredentials"]) == 1
    assert set(nobody["allowCredentials"][0]) == set(known["allowCredentials"][0]) == {"id", "type", "transports"}
    assert _sign_in_options(api, "nobody")["allowCredentials"] == nobody["allowCredentials"]  # stable per name
    assert nobody["allowCredentials"] != bob["allowCredentials"]


def test_a_username_first_challenge_signs_in_only_that_account(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    _, alices = alice
    bobs = SoftAuthenticator()
    assert _enrol(api, api.signed_up("bob"), bobs).status_code == 201
    for_alice = _sign_in_options(api, "alice")
    assert _error(_sign_in(api, bobs.get(for_alice, credential=bobs.credentials[0]))) == (401, "invalid_credentials")
    for_nobody = _sign_in_options(api, "nobody")
    assert _error(_sign_in(api, alices.get(for_nobody, credential=alices.credentials[0]))) == (
        401,
        "invalid_credentials",
    )


def test_a_replayed_assertion_is_refused(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    _, authenticator = alice
    assertion = authenticator.get(_sign_in_options(api))
    assert _sign_in(api, assertion).status_code == 200
    assert _error(_sign_in(api, assertion)) == (401, "invalid_credentials")
    reasons = [e.metadata.get("reason") for e in Activity.query(_user("alice").id) if e.action == "login_failed"]
    assert "challenge_already_used" in reasons or "sign_count_went_back" in reasons


def test_a_spent_challenge_is_refused_even_with_a_new_count(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    _, authenticator = alice
    options = _sign_in_options(api)
    assert _sign_in(api, authenticator.get(options)).status_code == 200
    assert _error(_sign_in(api, authenticator.get(options))) == (401, "invalid_credentials")
    reasons = [e.metadata.get("reason") for e in Activity.query(_user("alice").id) if e.action == "login_failed"]
    assert reasons == ["challenge_already_used"]


def test_a_wrong_origin_is_refused(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    _, authenticator = alice
    phished = authenticator.get(_sign_in_options(api), origin="http://testserver.evil.example")
    assert _error(_sign_in(api, phished)) == (401, "invalid_credentials")


def test_a_sign_count_that_went_back_is_refused_and_logged(
    api: Api, alice: tuple[str, SoftAuthenticator], caplog: pytest.LogCaptureFixture
) -> None:
    _, authenticator = alice
    assert _sign_in(api, authenticator.get(_sign_in_options(api), sign_count=7)).status_code == 200
    caplog.set_level(logging.WARNING)
    for count in (7, 3):
        assert _error(_sign_in(api, authenticator.get(_sign_in_options(api), sign_count=count))) == (
            401,
            "invalid_credentials",
        )
    warnings = [r for r in caplog.records if "cloned authenticator" in r.getMessage()]
    assert len(warnings) == 2 and warnings[-1].fields["presented_sign_count"] == 3  # type: ignore[attr-defined]
    assert next(Passkey.query(_user("alice").id)).sign_count == 7
    assert _sign_in(api, authenticator.get(_sign_in_options(api), sign_count=8)).status_code == 200


def test_authenticators_that_keep_no_count_sign_in_every_time(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    _, authenticator = alice
    for _ in range(2):
        assert _sign_in(api, authenticator.get(_sign_in_options(api), sign_count=0)).status_code == 200


def test_assertion_refusals(api: Api, alice: tuple[str, SoftAuthenticator], monkeypatch: pytest.MonkeyPatch) -> None:
    _, authenticator = alice
    credential = authenticator.credentials[0]

    def refused(assertion: Any) -> None:
        assert _error(_sign_in(api, assertion)) == (401, "invalid_credentials")

    refused(authenticator.get(_sign_in_options(api), flags=UP))  # no user verification
    refused(authenticator.get(_sign_in_options(api), flags=UV))  # no user presence
    refused(authenticator.get(dict(_sign_in_options(api), rpId="evil.example")))  # another rp id's hash
    forged = authenticator.get(_sign_in_options(api))
    forged["response"]["signature"] = b64(b"\x30\x06\x02\x01\x01\x02\x01\x01")  # well-formed, wrong
    refused(forged)
    refused(authenticator.get(dict(_sign_in_options(api), challenge=b64(os.urandom(64)))))  # not our challenge
    stranger = SoftAuthenticator()  # a credential nobody registered, claiming to be Alice's
    stranger.credentials.append(
        Credential(ec.generate_private_key(ec.SECP256R1()), os.urandom(16), credential.user_handle)
    )
    refused(stranger.get(_sign_in_options(api)))
    nobody = authenticator.get(_sign_in_options(api))
    nobody["response"]["userHandle"] = b64(b"not an id")
    refused(nobody)
    anonymous = authenticator.get(_sign_in_options(api))
    del anonymous["response"]["userHandle"]
    refused(anonymous)  # discoverable, and no user handle: no account to look in
    refused({"id": "x"})
    refused({"id": "x", "rawId": "x", "type": "public-key", "response": {"clientDataJSON": "!!"}})
    options = _sign_in_options(api)
    later = clock.now() + timedelta(seconds=passkey_challenges.CHALLENGE_SECONDS + 1)
    monkeypatch.setattr(clock, "now", lambda: later)
    refused(authenticator.get(options))  # the challenge expired
    monkeypatch.undo()
    assert _error(_post(api, "/api/login/passkey/", {"credential": "text"})) == (400, "validation_error")
    assert next(Passkey.query(_user("alice").id)).sign_count == 0  # nothing above counted


def test_a_deleted_account_cannot_sign_in_and_leaves_no_passkey(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    token, authenticator = alice
    user_id = _user("alice").id
    assert api.call("DELETE", "/api/me/", {"password": "correct horse"}, token).status_code == 204
    assert list(Passkey.query(user_id)) == []
    assert not list(Claim.query(passkeys.claim_key(b64(authenticator.credentials[0].credential_id))))
    assert _error(_sign_in(api, authenticator.get(_sign_in_options(api)))) == (401, "invalid_credentials")


# --- staff ----------------------------------------------------------------------------


def test_staff_reach_the_admin_routes_with_a_passkey_alone(api: Api) -> None:
    accounts.create_user("root", "root@example.com", "long enough", role="superuser")
    password_only = api.login("root", "long enough")["access"]
    assert _error(api.call("GET", "/api/admin/stats/", token=password_only)) == (403, "mfa_required")
    authenticator = SoftAuthenticator()
    assert _enrol(api, password_only, authenticator).status_code == 201  # instead of TOTP, at first log-in
    assert _error(api.call("GET", "/api/admin/stats/", token=password_only)) == (403, "mfa_required")
    session = _sign_in(api, authenticator.get(_sign_in_options(api, "root"))).data
    assert api.call("GET", "/api/admin/stats/", token=session["access"]).status_code == 200
    refreshed = _post(api, "/api/refresh/", {"refresh": session["refresh"]}).data
    assert api.call("GET", "/api/admin/stats/", token=refreshed["access"]).status_code == 200
    # Without any passkey left, the session has no second factor to stand on.
    (item,) = api.call("GET", "/api/passkeys/", token=refreshed["access"]).data["items"]
    assert api.call("DELETE", f"/api/passkeys/{item['id']}/", token=refreshed["access"]).status_code == 204
    assert _error(api.call("GET", "/api/admin/stats/", token=refreshed["access"])) == (403, "mfa_required")


# --- the challenge itself ---------------------------------------------------------------


def test_challenges_are_bound_and_signed(aws_resources: dict[str, Any]) -> None:
    raw = passkey_challenges.issue(passkey_challenges.LOGIN, "a" * 32)
    read = passkey_challenges.read(raw, passkey_challenges.LOGIN)
    assert read.user_id == "a" * 32 and read.raw == raw
    with pytest.raises(passkey_challenges.InvalidChallenge):
        passkey_challenges.read(raw, passkey_challenges.REGISTER)
    tampered = raw[:-17] + bytes([raw[-17] ^ 1]) + raw[-16:]  # the bound account's last byte
    with pytest.raises(passkey_challenges.InvalidChallenge):
        passkey_challenges.read(tampered, passkey_challenges.LOGIN)
    with pytest.raises(passkey_challenges.InvalidChallenge):
        passkey_challenges.read(b"short", passkey_challenges.LOGIN)


def _user(username: str) -> User:
    return next(User.by_username.query(username[0], User.username_key == username))


def test_staff_with_a_passkey_are_not_asked_to_enrol(api: Api, alice: tuple[str, SoftAuthenticator]) -> None:
    alice_id, bob_id = _user("alice").id, accounts.create_user("bob", "bob@example.com", "long enough").id
    for user_id in (alice_id, bob_id):
        User(user_id).update(actions=[User.is_staff.set(True)])
    assert mfa._enrol_letter(alice_id, "http://testserver") is None  # her passkey is her second factor
    assert mfa._enrol_letter(bob_id, "http://testserver") is not None

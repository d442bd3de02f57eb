"""Verified email: the link, its misuse, and who owns an address when several accounts hold it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.models import Activity, Claim, User
from tests import mailbox
from tests.concurrency import at_once
from tests.unit.conftest import Api


@pytest.fixture(autouse=True)
def outbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    yield tmp_path / "outbox"


def _link(api: Api, username: str) -> str:
    """Deliver the queued mail; the newest verification token sent to `username`'s account."""
    mailbox.deliver_all(api.client)
    user_id = _id(username)
    tokens = [t for m in mailbox.outbox() for t in mailbox.links(m, "verify") if t.startswith(f"{user_id}.")]
    assert tokens, f"no verification link for {username}"
    return tokens[-1]


def _id(username: str) -> str:
    return str(Claim.get(f"username#{username.casefold()}").owner_id)


def _verify(api: Api, token: Any) -> Any:
    return api.call("POST", "/api/email/verify/", {"token": token})


def _resend(api: Api, access: str) -> Any:
    return api.call("POST", "/api/email/verify/resend/", token=access)


def _code(response: Any) -> str:
    return str(response.data["error"]["code"])


def _me(api: Api, access: str) -> dict[str, Any]:
    return dict(api.call("GET", "/api/me/", token=access).data["user"])


def _run(targets: list[Callable[[], Any]]) -> list[str]:
    """Each target in its own thread, released together; each outcome "ok" or its error code."""
    results = at_once(len(targets), lambda i: targets[i](), caught=(Exception,))
    return ["ok" if not isinstance(r, Exception) else getattr(r, "code", repr(r)) for r in results]


def test_registration_sends_a_link_that_verifies_the_email(api: Api) -> None:
    access = api.signed_up("alice")
    assert _me(api, access)["email_verified"] is False
    token = _link(api, "alice")
    [letter] = mailbox.outbox()
    assert letter["To"] == "alice@example.com" and letter["Subject"] == "Confirm your email address"
    html = letter.get_body(preferencelist=("html",))
    assert html is not None and f"http://testserver/dashboard/?verify={token}" in str(html.get_content())
    assert len(token.partition(".")[2]) >= 43  # 256 random bits, urlsafe
    assert token not in str(User.get(_id("alice")).verify_token_hash)  # only the hash is stored

    answer = _verify(api, token)
    assert answer.status_code == 200, answer.data
    assert answer.data["user"]["email_verified"] is True and answer.data["user"]["email"] == "alice@example.com"
    assert _me(api, access)["email_verified"] is True
    assert [e.action for e in Activity.query(_id("alice"))].count("email_verified") == 1
    assert api.login("alice@example.com")["access"]  # login by a verified email


def test_a_bengali_account_gets_the_bengali_email(api: Api) -> None:
    body = {"username": "rahim", "email": "rahim@example.com", "password": "correct horse", "language": "bn"}
    assert api.call("POST", "/api/register/", body).status_code == 201
    token = _link(api, "rahim")
    [letter] = mailbox.outbox()
    assert letter["Subject"] == "আপনার ইমেইল ঠিকানা নিশ্চিত করুন"
    assert token in mailbox.text_of(letter)


def test_login_by_an_unverified_email_is_the_usual_401(api: Api) -> None:
    api.register("alice")
    unverified = api.call("POST", "/api/login/", {"username": "alice@example.com", "password": "correct horse"})
    unknown = api.call("POST", "/api/login/", {"username": "nobody@example.com", "password": "correct horse"})
    assert unverified.status_code == unknown.status_code == 401
    assert unverified.data == unknown.data
    assert api.login("alice")["access"]  # the username still works


def test_a_used_token_is_refused(api: Api) -> None:
    api.register("alice")
    token = _link(api, "alice")
    assert _verify(api, token).status_code == 200
    again = _verify(api, token)
    assert (again.status_code, _code(again)) == (400, "invalid_token")


def test_an_expired_token_is_refused(api: Api) -> None:
    api.register("alice")
    token = _link(api, "alice")
    User(_id("alice")).update(actions=[User.verify_expires_at.set("2000-01-01T00:00:00Z")])
    answer = _verify(api, token)
    assert (answer.status_code, _code(answer)) == (400, "invalid_token")


def test_a_resend_supersedes_the_earlier_link(api: Api) -> None:
    access = api.signed_up("alice")
    first = _link(api, "alice")
    assert _resend(api, access).status_code == 202
    second = _link(api, "alice")
    assert first != second
    refused = _verify(api, first)
    assert (refused.status_code, _code(refused)) == (400, "invalid_token")
    assert _verify(api, second).status_code == 200


@pytest.mark.parametrize(
    "token",
    ["x", "no-dot-at-all", "abc.def", "00000000000040008000000000000000.", "." * 50, "é" * 10, "a" * 199, 5, None],
)
def test_malformed_tokens_are_refused(api: Api, token: Any) -> None:
    api.register("alice")
    answer = _verify(api, token)
    assert answer.status_code == 400
    assert _code(answer) in ({"invalid_token"} if isinstance(token, str) else {"validation_error"})


def test_another_accounts_token_does_not_verify_this_account(api: Api) -> None:
    api.register("alice")
    api.register("bob")
    secret = _link(api, "alice").partition(".")[2]
    answer = _verify(api, f"{_id('bob')}.{secret}")
    assert (answer.status_code, _code(answer)) == (400, "invalid_token")
    assert not User.get(_id("bob")).email_verified


def test_the_first_to_verify_owns_the_address_and_the_others_lose_it(api: Api) -> None:
    alice = api.signed_up("alice")
    bob_answer = api.register("bob", email="ALICE@example.com")
    assert bob_answer.status_code == 201 and bob_answer.data["user"]["email"] == "alice@example.com"
    bob = api.login("bob")["access"]
    carol = api.register("carol", email="alice@example.com")
    assert carol.status_code == 201
    bobs_token = _link(api, "bob")

    assert _verify(api, bobs_token).status_code == 200
    assert _me(api, bob)["email"] == "alice@example.com"
    assert _me(api, alice)["email"] is None and _me(api, alice)["email_verified"] is False
    assert User.get(_id("carol")).email is None
    assert [u.username for u in User.by_email.query("a", User.email_key == "alice@example.com")] == ["bob"]
    lost = _verify(api, _link(api, "alice"))
    assert (lost.status_code, _code(lost)) == (409, "email_taken")
    assert (_resend(api, alice).status_code, _code(_resend(api, alice))) == (409, "no_email")
    assert (_resend(api, bob).status_code, _code(_resend(api, bob))) == (409, "already_verified")
    late = api.register("dave", email="alice@example.com")
    assert (late.status_code, _code(late)) == (409, "email_taken")  # verified now: taken
    login = api.call("POST", "/api/login/", {"username": "alice@example.com", "password": "correct horse"})
    assert login.status_code == 200 and _me(api, login.data["access"])["username"] == "bob"


def test_two_parallel_verifications_of_one_address_have_one_winner(api: Api, atomic_dynamodb: None) -> None:
    from chalicelib.accounts import verification

    api.register("alice")
    api.register("bob", email="alice@example.com")
    tokens = [_link(api, "alice"), _link(api, "bob")]
    outcomes = _run([lambda t=t: verification.verify({"token": t}) for t in tokens])
    assert sorted(outcomes) == ["email_taken", "ok"]
    owner = str(Claim.get("email#alice@example.com").owner_id)
    other = ({_id("alice"), _id("bob")} - {owner}).pop()
    assert User.get(owner).email_verified and User.get(owner).email == "alice@example.com"
    assert User.get(other).email is None and not User.get(other).email_verified
    with pytest.raises(Claim.DoesNotExist):
        Claim.get("email-pending#alice@example.com")


def test_parallel_uses_of_one_token_verify_once(api: Api, atomic_dynamodb: None) -> None:
    from chalicelib.accounts import verification

    api.register("alice")
    token = _link(api, "alice")
    outcomes = _run([lambda: verification.verify({"token": token}) for _ in range(6)])
    assert sorted(outcomes) == ["invalid_token"] * 5 + ["ok"]
    assert [e.action for e in Activity.query(_id("alice"))].count("email_verified") == 1


def test_a_holder_whose_email_moved_is_skipped(api: Api) -> None:
    """A holder listed in the pending item whose email is no longer the address (its account
    changed meanwhile) makes the transaction's condition fail once; it is skipped, not nulled."""
    api.register("alice")
    api.register("bob", email="alice@example.com")
    User(_id("bob")).update(actions=[User.email.set("bob@example.com")])
    assert _verify(api, _link(api, "alice")).status_code == 200
    assert User.get(_id("bob")).email == "bob@example.com"


def test_at_most_twenty_accounts_hold_one_unverified_address(api: Api) -> None:
    from chalicelib.accounts import accounts

    for i in range(accounts.PENDING_CAP):
        assert api.register(f"holder{i}", email="shared@example.com").status_code == 201
    over = api.register("one-more", email="shared@example.com")
    assert (over.status_code, _code(over)) == (409, "email_taken")
    mailbox.delete(mailbox.queued())
    assert api.register("elsewhere", email="other@example.com").status_code == 201


def test_parallel_registrations_with_one_unverified_address_all_succeed(api: Api, atomic_dynamodb: None) -> None:
    from chalicelib.accounts import accounts

    outcomes = _run([lambda i=i: accounts.create_user(f"racer{i}", "same@example.com", "longenough") for i in range(6)])
    assert outcomes == ["ok"] * 6
    assert len(Claim.get("email-pending#same@example.com").holders or ()) == 6


def test_at_most_three_resends_an_hour_even_in_parallel(api: Api, atomic_dynamodb: None) -> None:
    from chalicelib.accounts import accounts, verification

    access = api.signed_up("alice")
    principal = accounts.authenticate(access)
    outcomes = _run([lambda: verification.resend(principal, base_url="http://testserver") for _ in range(8)])
    assert sorted(outcomes) == ["ok"] * 3 + ["too_many_requests"] * 5
    refused = _resend(api, access)
    assert (refused.status_code, _code(refused)) == (429, "too_many_requests")
    assert len(mailbox.queued()) == 1 + 3  # the registration's email and the three accepted


def test_a_duplicate_delivery_of_the_verification_job_sends_once(api: Api) -> None:
    api.register("alice")
    [message] = mailbox.queued()
    mailbox.invoke(api.client, message)
    mailbox.invoke(api.client, message)  # SQS delivers at least once
    mailbox.delete([message])
    assert len(mailbox.outbox()) == 1


def test_the_verification_email_of_a_verified_account_is_not_sent(api: Api) -> None:
    access = api.signed_up("alice")
    assert _resend(api, access).status_code == 202
    [first, second] = mailbox.queued()
    mailbox.run_worker(api.client, [first])
    assert _verify(api, _link(api, "alice")).status_code == 200
    mailbox.run_worker(api.client, [second])
    assert len(mailbox.outbox()) == 1


def test_an_account_from_before_verification_keeps_its_address_and_can_verify(api: Api) -> None:
    """`.local` data written before this feature: an `email#` claim for every account, no flag."""
    from chalicelib.accounts import accounts

    user = accounts.create_user("old", "old@example.com", "correct horse", verified=True)
    User(user.id).update(actions=[User.email_verified.remove()])  # as stored before the flag existed
    access = api.login("old@example.com")["access"]  # its login by email keeps working
    assert _me(api, access)["email_verified"] is False
    taken = api.register("new", email="old@example.com")
    assert (taken.status_code, _code(taken)) == (409, "email_taken")
    assert _resend(api, access).status_code == 202
    assert _verify(api, _link(api, "old")).status_code == 200
    assert _me(api, access)["email_verified"] is True
    assert Claim.get("email#old@example.com").owner_id == user.id


def test_an_operator_account_is_verified(aws_resources: dict[str, Any]) -> None:
    from chalicelib.accounts import accounts

    user, created = accounts.upsert_user("admin", "longenough1", "superuser", "Admin@Example.com")
    assert created and User.get(user.id).email_verified
    assert Claim.get("email#admin@example.com").owner_id == user.id


def test_resend_needs_a_session(api: Api) -> None:
    assert api.call("POST", "/api/email/verify/resend/").status_code == 401


def test_a_holder_joining_while_an_address_is_verified_loses_it_too(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pending item changes between the read and the transaction: its condition fails,
    the step runs again with the new holder, who loses the address like the others."""
    from chalicelib.accounts import accounts, verification

    api.register("alice")
    token = _link(api, "alice")
    read = verification._address_items
    rounds: list[str] = []

    def racing(address: str) -> Any:
        found = read(address)
        if not rounds:
            accounts.create_user("latecomer", address, "longenough")
        rounds.append(address)
        return found

    monkeypatch.setattr(verification, "_address_items", racing)
    assert _verify(api, token).status_code == 200
    assert len(rounds) == 2
    assert User.get(_id("latecomer")).email is None

"""Password reset by email: the link's token and every way it can be misused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.client
import pytest

from chalicelib.core.models import Activity, User
from tests import mailbox
from tests.unit.conftest import Api

NEW = "brand new secret"


@pytest.fixture(autouse=True)
def outbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    yield tmp_path / "outbox"


def _forgot(api: Api, email: str) -> Any:
    return api.call("POST", "/api/password/forgot/", {"email": email})


def _reset_link(api: Api, email: str = "alice@example.com") -> str:
    assert _forgot(api, email).status_code == 202
    mailbox.deliver_all(api.client)
    resets = [m for m in mailbox.outbox() if "reset" in str(m["Subject"]).lower() and m["To"] == email]
    return mailbox.links(resets[-1])[0]


def _reset(api: Api, token: str, password: str = NEW) -> Any:
    return api.call("POST", "/api/password/reset/", {"token": token, "new_password": password})


def _code(response: Any) -> str:
    return str(response.data["error"]["code"])


def test_a_reset_link_sets_the_password_and_ends_every_session(api: Api) -> None:
    old = api.signed_up("alice")
    refresh = api.login("alice")["refresh"]
    token = _reset_link(api)

    answer = _reset(api, token)
    assert answer.status_code == 200, answer.data
    assert api.call("GET", "/api/me/", token=old).status_code == 401
    assert api.call("POST", "/api/refresh/", {"refresh": refresh}).status_code == 401
    assert api.call("GET", "/api/me/", token=answer.data["access"]).status_code == 200
    assert api.login("alice", NEW)["access"]
    assert api.call("POST", "/api/login/", {"username": "alice", "password": "correct horse"}).status_code == 401

    user = User.get(api.call("GET", "/api/me/", token=answer.data["access"]).data["user"]["id"])
    assert [e.action for e in Activity.query(user.id)].count("password_reset") == 1
    mailbox.deliver_all(api.client)
    subjects = [str(m["Subject"]) for m in mailbox.outbox()]
    assert subjects.count("Your password was changed") == 1
    assert all(token not in mailbox.text_of(m) for m in mailbox.outbox() if "changed" in str(m["Subject"]))


def _registered(api: Api, username: str = "alice") -> None:
    """Register, the verification email left out (test_verification.py reads those)."""
    assert api.register(username).status_code == 201
    mailbox.delete(mailbox.queued())


def test_the_email_is_rfc_5322_utf8_with_the_link_in_text_and_html(api: Api, outbox_dir: Path) -> None:
    _registered(api)
    token = _reset_link(api)
    [path] = list(outbox_dir.glob("*.eml"))
    message = mailbox.outbox()[0]
    assert message["To"] == "alice@example.com" and message["From"] and message["Date"] and message["Message-ID"]
    html = message.get_body(preferencelist=("html",))
    assert html is not None and f"?reset={token}" in str(html.get_content())
    assert b"correct horse" not in path.read_bytes()


def test_known_and_unknown_addresses_get_the_same_answer_and_the_same_aws_calls(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _registered(api)
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    answers = {}
    for email in ("alice@example.com", "nobody@example.com"):
        calls.clear()
        response = _forgot(api, email)
        answers[email] = (response.status_code, response.data, list(calls))
    assert answers["alice@example.com"] == answers["nobody@example.com"]
    assert answers["nobody@example.com"] == (202, {"status": "accepted"}, ["PutItem"])  # the job, in the outbox
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", original)
    mailbox.deliver_all(api.client)
    assert [m["To"] for m in mailbox.outbox()] == ["alice@example.com"]


def test_a_used_token_is_refused(api: Api) -> None:
    api.register("alice")
    token = _reset_link(api)
    assert _reset(api, token).status_code == 200
    again = _reset(api, token, "another new one")
    assert (again.status_code, _code(again)) == (400, "invalid_token")


def test_an_expired_token_is_refused(api: Api) -> None:
    api.register("alice")
    token = _reset_link(api)
    user_id = token.partition(".")[0]
    User(user_id).update(actions=[User.reset_expires_at.set("2000-01-01T00:00:00Z")])
    answer = _reset(api, token)
    assert (answer.status_code, _code(answer)) == (400, "invalid_token")


def test_only_the_newest_link_works(api: Api) -> None:
    api.register("alice")
    first = _reset_link(api)
    second = _reset_link(api)
    assert first != second
    refused = _reset(api, first)
    assert (refused.status_code, _code(refused)) == (400, "invalid_token")
    assert _reset(api, second).status_code == 200


@pytest.mark.parametrize(
    "token",
    ["x", "no-dot-at-all", "abc.def", "00000000-0000-4000-8000-000000000000.", "." * 50, "é" * 10, "a" * 199],
)
def test_malformed_tokens_are_refused(api: Api, token: str) -> None:
    api.register("alice")
    answer = _reset(api, token)
    assert (answer.status_code, _code(answer)) == (400, "invalid_token")


def test_an_overlong_token_is_unknown_and_a_missing_one_a_validation_error(api: Api) -> None:
    """The contract: any unknown token, of any length, is `invalid_token`."""
    for token in ("a" * 5000, f"{'0' * 32}.{'a' * 5000}"):
        too_long = _reset(api, token)
        assert (too_long.status_code, _code(too_long)) == (400, "invalid_token")
    missing = api.call("POST", "/api/password/reset/", {"new_password": NEW})
    assert (missing.status_code, _code(missing)) == (400, "validation_error")


def test_another_accounts_token_does_not_open_this_account(api: Api) -> None:
    api.register("alice")
    bob = api.register("bob").data["user"]["id"]
    alices = _reset_link(api)
    secret = alices.partition(".")[2]
    answer = _reset(api, f"{bob}.{secret}")
    assert (answer.status_code, _code(answer)) == (400, "invalid_token")
    assert api.login("bob")["access"]  # bob's password is unchanged


def test_a_weak_new_password_is_refused_and_the_token_still_works(api: Api) -> None:
    api.register("alice")
    token = _reset_link(api)
    weak = _reset(api, token, "short")
    assert (weak.status_code, _code(weak)) == (400, "validation_error")
    assert _reset(api, token, "x" * 73).status_code == 400  # over 72 bytes
    assert _reset(api, token).status_code == 200


def test_a_bad_email_is_a_validation_error(api: Api) -> None:
    for body in ({"email": "not an email"}, {}, {"email": 5}):
        answer = api.call("POST", "/api/password/forgot/", body)
        assert (answer.status_code, _code(answer)) == (400, "validation_error")


def test_parallel_resets_with_one_token_have_one_winner(api: Api, atomic_dynamodb: None) -> None:
    from chalicelib.accounts import recovery

    api.register("alice")
    token = _reset_link(api)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            recovery.reset({"token": token, "new_password": f"parallel secret {i}"})
            outcomes.append("reset")
        except Exception as error:
            outcomes.append(getattr(error, "code", repr(error)))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("reset") == 1
    assert set(outcomes) - {"reset"} == {"invalid_token"}


def test_at_most_three_reset_emails_an_hour_even_from_parallel_workers(api: Api, atomic_dynamodb: None) -> None:
    _registered(api)
    for _ in range(6):
        assert _forgot(api, "alice@example.com").status_code == 202
    messages = mailbox.queued()
    assert len(messages) == 6
    errors: list[BaseException] = []

    def work(message: dict[str, Any]) -> None:
        try:
            mailbox.run_worker(api.client, [message])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(mailbox.outbox()) == 3


def test_every_account_holding_the_address_gets_its_own_link(api: Api) -> None:
    _registered(api)
    # An address nobody has verified blocks nobody: two accounts hold it.
    assert api.register("alice2", email="alice@example.com").status_code == 201
    mailbox.delete(mailbox.queued())
    assert _forgot(api, "alice@example.com").status_code == 202
    mailbox.deliver_all(api.client)
    tokens = [mailbox.links(m)[0] for m in mailbox.outbox()]
    assert len(tokens) == 2 and len({t.partition(".")[0] for t in tokens}) == 2

"""Races on the real local stack (DynamoDB Local, the API's processes) over HTTP: verifying one
address twice at once, guessing second-factor codes in parallel, deleting an account twice at once.

The unit tests run the same races on moto; here DynamoDB Local's own transactions and conditions
(set sizes, `contains`, cancellation reasons) decide them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from chalicelib.core import clock
from tests import mailbox, second_factor
from tests.concurrency import at_once

pytestmark = pytest.mark.integration
PASSWORD = "race on the real engine"


def _name(prefix: str) -> str:
    return f"{prefix}{clock.new_id()[:10]}"


def _register(stack: Any, username: str, email: str) -> None:
    body = {"username": username, "email": email, "password": PASSWORD}
    answer = requests.post(stack.url("/api/register/"), json=body, timeout=30)
    assert answer.status_code == 201, answer.text


def _login(stack: Any, username: str) -> dict[str, Any]:
    answer = requests.post(stack.url("/api/login/"), json={"username": username, "password": PASSWORD}, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _verify_token(stack: Any, email: str, user_id: str) -> str:
    """The verification token the stack's mail worker sent to `email` for that account."""
    links = mailbox.wait_for_links(stack.state_dir / "outbox", email, "verify", count=2)
    tokens = [parse_qs(urlsplit(link).query)["verify"][0] for link in links]
    [token] = [token for token in tokens if token.startswith(f"{user_id}.")]
    return token


def test_two_accounts_verifying_one_address_at_once_have_one_owner(stack: Any) -> None:
    email = f"{_name('shared')}@example.com"
    names = [_name("first"), _name("second")]
    for name in names:
        _register(stack, name, email)  # nobody verified the address: both may hold it
    sessions = [_login(stack, name) for name in names]
    ids = [
        requests.get(stack.url("/api/me/"), headers={"Authorization": f"Bearer {s['access']}"}, timeout=30).json()[
            "user"
        ]["id"]
        for s in sessions
    ]
    tokens = [_verify_token(stack, email, user_id) for user_id in ids]
    answers = at_once(
        2, lambda i: requests.post(stack.url("/api/email/verify/"), json={"token": tokens[i]}, timeout=30)
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200, 409], [a.text for a in answers]
    users = [
        requests.get(stack.url("/api/me/"), headers={"Authorization": f"Bearer {s['access']}"}, timeout=30).json()[
            "user"
        ]
        for s in sessions
    ]
    assert {(u["email"], u["email_verified"]) for u in users} == {(email, True), (None, False)}
    taken = requests.post(
        stack.url("/api/register/"), json={"username": _name("late"), "email": email, "password": PASSWORD}, timeout=30
    )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "email_taken"


def test_thirty_parallel_code_guesses_get_five_checks(stack: Any) -> None:
    username = _name("guess")
    _register(stack, username, f"{username}@example.com")
    post = second_factor.over_requests(requests.Session(), stack.url(""), timeout=30)
    second_factor.log_in(post, username, PASSWORD)  # enrols the account
    challenge = _login(stack, username)
    assert challenge["mfa_required"] is True
    answers = at_once(
        30,
        lambda i: requests.post(
            stack.url("/api/login/mfa/"), json={"mfa_token": challenge["mfa_token"], "code": f"{i:06d}x"}, timeout=30
        ),
    )
    codes = [answer.json()["error"]["code"] for answer in answers]
    assert codes.count("invalid_code") == 5 and codes.count("invalid_token") == 25, codes


def test_deleting_one_account_twice_at_once_deletes_it_once(stack: Any) -> None:
    username = _name("leaver")
    email = f"{username}@example.com"
    _register(stack, username, email)
    bearer = {"Authorization": f"Bearer {_login(stack, username)['access']}"}
    answers = at_once(
        2,
        lambda _: requests.delete(stack.url("/api/me/"), json={"password": PASSWORD}, headers=bearer, timeout=60),
    )
    assert sorted(answer.status_code for answer in answers) == [204, 401]
    assert requests.get(stack.url("/api/me/"), headers=bearer, timeout=30).status_code == 401
    gone = requests.post(stack.url("/api/login/"), json={"username": username, "password": PASSWORD}, timeout=30)
    assert gone.status_code == 401
    _register(stack, username, email)  # the names are free again

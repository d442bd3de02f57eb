"""A test's authenticator app, and sessions that pass the second factor: shared by the unit,
integration and browser tests, the benchmarks and anything else that signs staff in.

Staff routes answer `403 mfa_required` to a session without the second factor, so every
staff session in a test goes through the real flow: log in, enrol if the account has no
factor yet (setup, confirm with a code: the confirming session comes back marked `mfa`),
otherwise answer the `mfa` token with a code no request has used. The service accepts each
time step once and the previous/next step only, so `Authenticator.code` walks the steps it
may still use and then spends recovery codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.accounts import totp

# (path, JSON body, bearer token or None) -> (status, JSON answer): over any HTTP client.
Post = Callable[[str, dict[str, Any], str | None], tuple[int, Any]]


@dataclass
class Authenticator:
    """What a person's authenticator app and their printed recovery codes hold."""

    secret: str
    recovery_codes: list[str]
    last_step: int = -1  # the latest step whose code was handed out

    def code(self) -> str:
        """A code the service has not accepted yet (a TOTP code, else a recovery code).

        Only the current and the next step: one of them stays inside the service's window
        however the clock ticks between here and the check."""
        step = max(self.last_step + 1, totp.current_step())
        if step <= totp.current_step() + totp.DRIFT_STEPS:
            self.last_step = step
            return totp.code_at(self.secret, step)
        return self.recovery_codes.pop()


AUTHENTICATORS: dict[str, Authenticator] = {}  # by username: each account enrolled by this process


def _expect(answer: tuple[int, Any], path: str) -> Any:
    status, body = answer
    if status != 200:
        raise AssertionError(f"POST {path}: {status} {body}")
    return body


def enrol(post: Post, access: str) -> tuple[Authenticator, dict[str, Any]]:
    """Set up and confirm a second factor with this session: the app, and the answer to
    confirm (the recovery codes and this session's fresh tokens)."""
    setup = _expect(post("/api/mfa/setup/", {}, access), "/api/mfa/setup/")
    step = totp.current_step()
    confirmed = _expect(
        post("/api/mfa/confirm/", {"code": totp.code_at(setup["secret"], step)}, access), "/api/mfa/confirm/"
    )
    return Authenticator(setup["secret"], list(confirmed["recovery_codes"]), step), confirmed


def log_in(post: Post, username: str, password: str) -> dict[str, Any]:
    """A session that passed the second factor (enrolling the account first if it has none)."""
    answer = _expect(post("/api/login/", {"username": username, "password": password}, None), "/api/login/")
    if not answer.get("mfa_required"):
        AUTHENTICATORS[username], confirmed = enrol(post, answer["access"])
        return {key: value for key, value in confirmed.items() if key != "recovery_codes"}
    body = {"mfa_token": answer["mfa_token"], "code": AUTHENTICATORS[username].code()}
    return dict(_expect(post("/api/login/mfa/", body, None), "/api/login/mfa/"))


def over_requests(http: Any, base_url: str, *, timeout: float = 60) -> Post:
    """`Post` over a requests.Session (or locust's) against a running stack."""

    def post(path: str, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        reply = http.post(base_url + path, json=body, headers=headers, timeout=timeout)
        return reply.status_code, reply.json() if reply.content else None

    return post

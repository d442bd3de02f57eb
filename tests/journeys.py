"""One customer's whole journey over HTTP, as a browser drives it: shared by the integration
tests and the load benchmark (bench/load), which hands in locust's session instead of requests'.

Paying goes through the sandbox's hosted page exactly as a browser does: open the page, press
Pay, submit its auto-posting return form to our API (form-encoded, no token).
"""

from __future__ import annotations

import html
import re
import time
from typing import Any

import requests

HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')
RETURN_FORM_ACTION = re.compile(r'<form id="return" method="post" action="([^"]*)"')
PAY_FORM_ACTION = re.compile(r'<form method="post" action="([^"]*)">')
SETTLED = ("completed", "failed")


class JourneyError(AssertionError):
    """A step answered something a working stack never answers."""


def _expect(response: requests.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise JourneyError(f"{response.request.method} {response.url}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else {}


class Customer:
    """A person with an account on the stack at `api`; `http` is a requests.Session (or locust's)."""

    def __init__(self, http: requests.Session, api: str, username: str, password: str, *, timeout: float = 60) -> None:
        self.http = http
        self.api = api
        self.username = username
        self.password = password
        self.timeout = timeout  # per request: under a burst, bcrypt queues for the CPU
        self.bearer: dict[str, str] = {}

    def url(self, path: str) -> str:
        return self.api + path

    def register(self) -> dict[str, Any]:
        body = {"username": self.username, "email": f"{self.username}@example.com", "password": self.password}
        return _expect(self.http.post(self.url("/api/register/"), json=body, timeout=self.timeout), 201)["user"]

    def log_in(self) -> dict[str, Any]:
        body = {"username": self.username, "password": self.password}
        tokens = _expect(self.http.post(self.url("/api/login/"), json=body, timeout=self.timeout), 200)
        self.bearer = {"Authorization": f"Bearer {tokens['access']}"}
        return tokens

    def get(self, path: str) -> dict[str, Any]:
        return _expect(self.http.get(self.url(path), headers=self.bearer, timeout=self.timeout), 200)

    def pay(self, **headers: str) -> str:
        """Initiate, press Pay on the hosted page, submit its return form; returns the transaction id."""
        initiated = _expect(
            self.http.post(
                self.url("/api/initiate-payment/"), json={}, headers={**self.bearer, **headers}, timeout=self.timeout
            ),
            201,
        )
        page = self.http.get(initiated["payment_url"], timeout=self.timeout)
        pay_action = PAY_FORM_ACTION.search(page.text)
        if pay_action is None:
            raise JourneyError(f"no pay form on the hosted page: {page.status_code} {page.text[:300]}")
        sandbox = initiated["payment_url"].split("/paynow.php", 1)[0]
        returned = self.http.post(sandbox + html.unescape(pay_action[1]), data={"action": "pay"}, timeout=self.timeout)
        target = RETURN_FORM_ACTION.search(returned.text)
        if target is None:
            raise JourneyError(f"no return form after Pay: {returned.status_code} {returned.text[:300]}")
        form = {html.unescape(name): html.unescape(value) for name, value in HIDDEN_INPUT.findall(returned.text)}
        settled = _expect(
            self.http.post(
                html.unescape(target[1]), data=form, headers={"Accept": "application/json"}, timeout=self.timeout
            ),
            200,
        )
        if settled.get("status") != "success":
            raise JourneyError(f"payment not settled: {settled}")
        return initiated["transaction_id"]

    def upload(self, filename: str, content: bytes) -> str:
        """Ask for a presigned POST and send the bytes to S3; returns the file id."""
        asked = _expect(
            self.http.post(
                self.url("/api/upload/"),
                json={"filename": filename, "size": len(content)},
                headers=self.bearer,
                timeout=self.timeout,
            ),
            201,
        )
        post = asked["upload"]
        sent = self.http.post(
            post["url"], data=post["fields"], files={"file": (filename, content)}, timeout=self.timeout
        )
        if sent.status_code != 204:
            raise JourneyError(f"S3 refused the upload: {sent.status_code} {sent.text[:300]}")
        return asked["file"]["id"]

    def wait_settled(self, file_id: str, timeout: float = 300) -> dict[str, Any]:
        """Poll the file until the worker has settled it (or the deadline passes)."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.get(f"/api/files/{file_id}/")
            if view["status"] in SETTLED:
                return view
            if time.monotonic() > deadline:
                raise JourneyError(f"file {file_id} still {view['status']} after {timeout} s")
            time.sleep(0.2)


def paid_customer(api: str, username: str) -> Customer:
    """A new account on the stack at `api`, logged in, that has paid through the sandbox's page."""
    customer = Customer(requests.Session(), api, username, f"{username} password")
    customer.register()
    customer.log_in()
    customer.pay()
    return customer

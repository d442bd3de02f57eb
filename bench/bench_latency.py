"""Per-route latency over HTTP against the local stack (`make run`'s), p50 / p95 of 100 requests.

Run: `.venv/bin/python bench/bench_latency.py [--requests N] [--app-dir OTHER_CHECKOUT]`.
Starts the stack with `tests/stack.py` (moto server, aamarPay sandbox, API, worker) on free
ports, makes the accounts it needs, then times each route with `requests` and
`time.perf_counter` (the client's view: HTTP, the app, and its round trips to the emulator).
Only the measured request is timed; what it needs first (a paid account, a payment pressed
"pay" on the sandbox's page) is prepared outside the clock.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000


class Bench:
    def __init__(self, stack: Any, app_dir: Path) -> None:
        self.stack, self.app_dir, self.http = stack, app_dir, requests.Session()
        self.serial = 0
        self.last_name = ""

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, self.stack.url(path), headers=headers, timeout=30, **kwargs)

    def user(self, paid: bool = False) -> str:
        """A new account's access token (with a payment settled when `paid`)."""
        self.serial += 1
        name = self.last_name = f"bench{self.serial}_{os.getpid()}"
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        assert self.call("POST", "/api/register/", json=body).status_code == 201
        token = self.call("POST", "/api/login/", json={"username": name, "password": PASSWORD}).json()["access"]
        if paid:
            assert self.success_return(self.paid_at_gateway(token)).status_code == 303
        return token

    def initiate(self, token: str) -> requests.Response:
        reply = self.call("POST", "/api/initiate-payment/", token, json={})
        assert reply.status_code == 201, reply.text
        return reply

    def paid_at_gateway(self, token: str) -> Any:
        """A new payment the customer paid on the sandbox's page: the return to deliver."""
        from tests.aamarpay_browser import press

        return press(self.initiate(token).json()["payment_url"], "pay")

    def success_return(self, hop: Any) -> requests.Response:
        return self.call("POST", "/api/payment/success/", data=hop.form, allow_redirects=False)

    def staff(self) -> str:
        env = self.stack.tool_env()
        args = ["--username", "benchstaff", "--password", PASSWORD, "--role", "staff"]
        subprocess.run([sys.executable, "-m", "local.manage_user", *args], cwd=self.app_dir, env=env, check=True)
        from tests import second_factor  # staff routes ask for a session that passed it

        post = second_factor.over_requests(self.http, self.stack.url(""), timeout=30)
        return str(second_factor.log_in(post, "benchstaff", PASSWORD)["access"])


def timed(requests_per_route: int, prepare: Callable[[], Any], request: Callable[[Any], Any]) -> tuple[float, float]:
    samples = []
    for _ in range(requests_per_route):
        prepared = prepare()
        started = time.perf_counter()
        request(prepared)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def routes(bench: Bench) -> dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]]:
    payer, staff = bench.user(paid=True), bench.staff()
    unpaid = bench.user()
    serial = iter(range(10**6))

    def new_body() -> dict[str, str]:
        name = f"r{next(serial)}_{os.getpid()}"
        return {"username": name, "email": f"{name}@example.com", "password": PASSWORD}

    login = {"username": bench.last_name, "password": PASSWORD}  # hashed by the stack (BCRYPT_ROUNDS=4)
    return {
        "POST /api/register/": (new_body, lambda body: bench.call("POST", "/api/register/", json=body)),
        "POST /api/login/": (lambda: None, lambda _: bench.call("POST", "/api/login/", json=login)),
        "GET /api/me/": (lambda: None, lambda _: bench.call("GET", "/api/me/", payer)),
        "POST /api/initiate-payment/": (lambda: None, lambda _: bench.initiate(unpaid)),
        "POST /api/payment/success/": (lambda: bench.paid_at_gateway(bench.user()), bench.success_return),
        "POST /api/upload/": (
            lambda: None,
            lambda _: bench.call("POST", "/api/upload/", payer, json={"filename": "a.txt", "size": 10}),
        ),
        "GET /api/transactions/": (lambda: None, lambda _: bench.call("GET", "/api/transactions/", unpaid)),
        "GET /api/files/": (lambda: None, lambda _: bench.call("GET", "/api/files/", payer)),
        "GET /api/admin/stats/": (lambda: None, lambda _: bench.call("GET", "/api/admin/stats/", staff)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--app-dir", type=Path, default=PROJECT_DIR, help="another checkout (a before figure)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.app_dir))
    from tests.stack import start_stack

    with tempfile.TemporaryDirectory() as scratch:
        stack = start_stack(Path(scratch) / "stack.log", {"FRESH": "1"}, timeout=180)
        try:
            bench = Bench(stack, args.app_dir)
            for name, (prepare, request) in routes(bench).items():
                p50, p95 = timed(args.requests, prepare, request)
                print(f"{name:<28} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms", flush=True)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()

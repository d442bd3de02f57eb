"""The same journeys as `bench.load.users`, from plain threads: one `requests` session per
journey and a 30 s timeout per request, which is how a black-box client (and API Gateway's
29 s limit) sees the stack. locust's gevent client shares one process and one loop; this one
does not, so both are run (`make bench-load CLIENT=threads`)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import requests

from bench.load.users import LEDGER, REQUEST_TIMEOUT, STEPS, Finished, journey_content
from chalicelib.core import clock
from tests.journeys import Customer


class _TimedSession(requests.Session):
    """Records every request's seconds by route, for the slowest request of the run."""

    def __init__(self, record: dict[str, list[float]], lock: threading.Lock) -> None:
        super().__init__()
        self._record, self._lock = record, lock

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        started = time.perf_counter()
        try:
            return super().request(method, url, *args, **kwargs)
        finally:
            path = str(url).split("://", 1)[-1].split("/", 1)[-1]
            route = "/" + path.split("?")[0] if path.startswith("api/") else "(S3 or sandbox)"
            with self._lock:
                self._record[f"{method!s} {_shape(route)}"].append(time.perf_counter() - started)


def _shape(route: str) -> str:
    """/api/files/<id>/ and /api/files/{id}/ are one route."""
    parts = route.split("/")
    return "/".join("{id}" if len(part) >= 20 else part for part in parts)


def run(api: str, users: int) -> tuple[dict[str, Any], float]:
    """All journeys released together; returns per-step and per-route timings and the seconds."""
    steps: dict[str, list[float]] = defaultdict(list)
    routes: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()
    barrier = threading.Barrier(users)

    def journey() -> None:
        customer = Customer(
            _TimedSession(routes, lock),
            api,
            f"load{clock.new_id()[:14]}",
            "load journey password",
            timeout=REQUEST_TIMEOUT,
        )
        content, words = journey_content(customer.username)
        barrier.wait()

        def step(name: str, work: Any) -> Any:
            started = time.perf_counter()
            result = work()
            with lock:
                steps[name].append(time.perf_counter() - started)
            return result

        try:
            step("register", customer.register)
            with lock:
                LEDGER.registered += 1
            step("login", customer.log_in)
            transaction_id = step("pay", customer.pay)
            view = step("upload-to-count", lambda: customer.wait_settled(customer.upload("journey.txt", content)))
        except Exception as error:
            with lock:
                LEDGER.failed.append(f"{customer.username}: {type(error).__name__}: {error}")
            return
        with lock:
            LEDGER.finished.append(
                Finished(customer.username, customer.password, customer.bearer, transaction_id, view["id"], words)
            )

    threads = [threading.Thread(target=journey) for _ in range(users)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {
        "steps": {name: _percentiles(steps[name]) for name in STEPS},
        "routes": {route: _percentiles(seconds) for route, seconds in sorted(routes.items())},
    }, elapsed


def _percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"n": 0}
    ordered = sorted(seconds)
    pick = lambda share: round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 2)  # noqa: E731
    return {"n": len(ordered), "p50_s": pick(0.5), "p95_s": pick(0.95), "max_s": round(ordered[-1], 2)}

"""The locust user: one whole journey per user (register, log in, pay on the hosted page,
upload a `.txt`, wait for its count), each step timed as one locust entry of type `step`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from locust import HttpUser, task
from locust.exception import StopUser

from chalicelib.core import clock
from tests.journeys import Customer

STEPS = ("register", "login", "pay", "upload-to-count")
REQUEST_TIMEOUT = 30  # API Gateway answers 504 after 29 s: a request slower than that is a failure
T = TypeVar("T")


@dataclass
class Finished:
    """What one journey did, for the invariants."""

    username: str
    password: str
    bearer: dict[str, str]
    transaction_id: str
    file_id: str
    words: int


@dataclass
class Ledger:
    """Shared by every user of one run (locust users are greenlets in this one process)."""

    finished: list[Finished] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    registered: int = 0  # answered 201, including journeys that failed later

    @property
    def done(self) -> int:
        return len(self.finished) + len(self.failed)


LEDGER = Ledger()


def journey_content(index: str) -> tuple[bytes, int]:
    text = f"load journey {index} এক দুই তিন\nfour five six seven\n"
    return text.encode(), len(text.split())


class JourneyUser(HttpUser):
    """`host` is the API base (http://localhost:8000); the sandbox and S3 URLs come from the API."""

    def _step(self, name: str, run: Callable[[], T]) -> T:
        started = time.perf_counter()
        failure: Exception | None = None
        try:
            return run()
        except Exception as error:
            failure = error
            raise
        finally:
            self.environment.events.request.fire(
                request_type="step",
                name=name,
                response_time=(time.perf_counter() - started) * 1000,
                response_length=0,
                exception=failure,
                context={},
            )

    @task
    def journey(self) -> None:
        username = f"load{clock.new_id()[:14]}"
        customer = Customer(self.client, self.host or "", username, "load journey password", timeout=REQUEST_TIMEOUT)
        content, words = journey_content(username)
        try:
            self._step("register", customer.register)
            LEDGER.registered += 1
            self._step("login", customer.log_in)
            transaction_id = self._step("pay", customer.pay)

            def upload_and_count() -> dict[str, Any]:
                return customer.wait_settled(customer.upload("journey.txt", content))

            view = self._step("upload-to-count", upload_and_count)
        except Exception as error:
            LEDGER.failed.append(f"{username}: {type(error).__name__}: {error}")
            raise StopUser() from error
        LEDGER.finished.append(
            Finished(username, customer.password, customer.bearer, transaction_id, view["id"], words)
        )
        raise StopUser()

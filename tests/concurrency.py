"""Requests at the same moment from real threads: what the tests' races are made of."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(
    count: int, attempt: Callable[[int], T], *, caught: tuple[type[Exception], ...] = ()
) -> list[T | Exception]:
    """`attempt(i)` for each i below `count`, each in its own thread, all released by one
    barrier; the results in order, an exception of the `caught` kinds standing as its result."""
    start = threading.Barrier(count)
    results: list[T | Exception | None] = [None] * count

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = attempt(i)
        except caught as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results  # type: ignore[return-value]  # every slot was filled by its thread

"""The bcrypt floor of a load run: the least wall time its password hashing alone can take.

Each journey hashes one password (register) and checks one (log in): 2 bcrypt runs of the
same cost. Spread perfectly over every core, N journeys cannot finish before
`2 * N * (one hash) / cores`; a run's ratio to that says how much everything else adds.
One hash is timed here, before the run, on the quiet machine (median of a few).
"""

from __future__ import annotations

import os
import statistics
import time

import bcrypt

HASHES_PER_JOURNEY = 2
SAMPLES = 5


def one_hash_seconds(rounds: int) -> float:
    salt = bcrypt.gensalt(rounds)
    times = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        bcrypt.hashpw(b"a password of a usual length", salt)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report(users: int, elapsed: float, rounds: int) -> dict[str, float]:
    """The floor of `users` journeys on this machine and the run's ratio to it."""
    seconds = HASHES_PER_JOURNEY * users * one_hash_seconds(rounds) / (os.cpu_count() or 1)
    return {"bcrypt_floor_s": round(seconds, 1), "vs_bcrypt_floor": round(elapsed / seconds, 2)}

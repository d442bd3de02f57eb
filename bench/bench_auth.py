"""Auth figures: cold-start import cost, AWS calls per auth request, bcrypt cost 12 vs 10.

Run: `.venv/bin/python bench/bench_auth.py [--runs N]`. Uses only public tools: `python -X
importtime`, moto's in-process mock, botocore's client API, and `time.perf_counter`.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent


def import_times(statement: str, runs: int) -> tuple[float, dict[str, float]]:
    """Median total import time (ms) of `statement`, and the median cost of each top-level import."""
    totals: list[float] = []
    per_module: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        total = 0.0
        for line in result.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _, cumulative, raw_name = line[len("import time:") :].split("|")
            name = raw_name.strip()
            depth = (len(raw_name) - len(raw_name.lstrip()) - 1) // 2
            milliseconds = int(cumulative.strip()) / 1000
            if depth == 0:  # top level: each module counted once
                total += milliseconds
            if depth <= 2:
                per_module[name].append(milliseconds)
        totals.append(total)
    medians = {name: statistics.median(values) for name, values in per_module.items()}
    return statistics.median(totals), medians


def calls_per_auth_request() -> dict[str, dict[str, int]]:
    """AWS API calls each auth route makes, counted at botocore's client boundary."""
    sys.path.insert(0, str(PROJECT_DIR))
    from chalice.test import Client

    from bench.in_process import moto_stack

    with moto_stack() as calls:
        import app

        results: dict[str, dict[str, int]] = {}
        with Client(app.app) as client:

            def measure(name: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
                calls.clear()
                headers = {"Content-Type": "application/json"}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                response = getattr(client.http, method)(path, headers=headers, body=json.dumps(body) if body else None)
                results[name] = dict(calls)
                return json.loads(response.body) if response.body else None

            credentials = {"username": "bench", "password": "bench password"}
            measure("register", "post", "/api/register/", {**credentials, "email": "bench@example.com"})
            tokens = measure("login", "post", "/api/login/", credentials)
            measure("me", "get", "/api/me/", token=tokens["access"])
            rotated = measure("refresh", "post", "/api/refresh/", {"refresh": tokens["refresh"]})
            measure("logout", "post", "/api/logout/", {"refresh": rotated["refresh"]}, token=rotated["access"])
            measure("login_failed", "post", "/api/login/", {**credentials, "password": "wrong password"})
    return results


def bcrypt_verify_ms(rounds: int, runs: int) -> float:
    import bcrypt

    hashed = bcrypt.hashpw(b"correct horse battery", bcrypt.gensalt(rounds=rounds))
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        bcrypt.checkpw(b"correct horse battery", hashed)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    app_ms, app_modules = import_times("import app", args.runs)
    floor_ms, _ = import_times("import chalice, botocore", args.runs)
    print(
        f"cold start: import app {app_ms:.0f} ms vs import chalice, botocore {floor_ms:.0f} ms "
        f"(ratio {app_ms / floor_ms:.2f}, median of {args.runs})"
    )
    store_ms, _ = import_times("import chalice, pynamodb.models", args.runs)
    print(
        f"  of which the DynamoDB layer: import chalice, pynamodb.models {store_ms:.0f} ms; our own code adds "
        f"{app_ms - store_ms:.0f} ms"
    )
    print("heaviest imports under app (cumulative, up to two levels deep):")
    for name, ms in sorted(app_modules.items(), key=lambda item: -item[1])[1:11]:
        print(f"  {ms:7.1f} ms  {name}")

    print("AWS calls per auth request:")
    for route, counted in calls_per_auth_request().items():
        print(f"  {route:<13} {sum(counted.values())}  {counted}")

    for rounds in (12, 10):
        print(f"bcrypt cost {rounds}: verify {bcrypt_verify_ms(rounds, 5):.0f} ms (median of 5, one core)")


if __name__ == "__main__":
    main()

"""`make bench-load N=100`: N concurrent whole journeys with locust (headless, as a library).

By default it starts its own stack exactly as `make run` does (bcrypt cost 12, 30 s schedule,
fresh state in a temporary directory); `--api` (and `--state-dir`) aim it at one already running
(its stats must not move meanwhile for the stats invariant to hold). Prints p50/p95 per step,
journeys per minute and every broken invariant, the last of them `make recount` after the run
(every counter equal to what the records say); exits 1 on any error or violation. Results go
to bench/results/load-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent
import locust  # noqa: F401  # gevent patches the standard library here, before requests loads ssl
import requests
from locust.env import Environment

from bench.load import cpu, floor, invariants, threads
from bench.load.users import LEDGER, STEPS, JourneyUser
from tests import second_factor

PROJECT_DIR = Path(__file__).resolve().parents[2]
MAKE_RUN_SETTINGS = {"BCRYPT_ROUNDS": "12", "SCHEDULE_SECONDS": "30", "QUEUE_VISIBILITY_TIMEOUT": "30"}


def _superuser(api: str, env: dict[str, str]) -> dict[str, str]:
    """`make user ROLE=superuser` against the stack, then a session that passed the second
    factor (enrolled at its first log-in): staff routes refuse a password-only one."""
    username, password = f"bench{int(time.time())}", "bench superuser password"
    command = [sys.executable, "-m", "local.manage_user", "--username", username, "--password", password]
    subprocess.run([*command, "--role", "superuser"], cwd=PROJECT_DIR, env=env, check=True, capture_output=True)
    tokens = second_factor.log_in(second_factor.over_requests(requests.Session(), api), username, password)
    return {"Authorization": f"Bearer {tokens['access']}"}


def _run(api: str, users: int, deadline_seconds: float) -> tuple[Environment, float]:
    environment = Environment(user_classes=[JourneyUser], host=api)
    runner = environment.create_local_runner()
    started = time.monotonic()
    runner.start(users, spawn_rate=users)
    while LEDGER.done < users and time.monotonic() - started < deadline_seconds:
        gevent.sleep(0.5)
    elapsed = time.monotonic() - started
    runner.quit()
    return environment, elapsed


def _report(environment: Environment, users: int, elapsed: float) -> dict[str, Any]:
    steps = {}
    for name in STEPS:
        entry = environment.stats.get(name, "step")
        steps[name] = {
            "p50_s": round(entry.get_response_time_percentile(0.5) / 1000, 2),
            "p95_s": round(entry.get_response_time_percentile(0.95) / 1000, 2),
            "failures": entry.num_failures,
        }
    total = environment.stats.total
    step_requests = sum(environment.stats.get(name, "step").num_requests for name in STEPS)
    slowest = max(
        (entry.max_response_time for (_, kind), entry in environment.stats.entries.items() if kind != "step"),
        default=0,
    )
    return _summary(users, elapsed) | {
        "steps": steps,
        "http_requests": total.num_requests - step_requests,
        "http_failures": total.num_failures - sum(step["failures"] for step in steps.values()),
        "slowest_request_s": round(slowest / 1000, 2),
    }


def _summary(users: int, elapsed: float) -> dict[str, Any]:
    return {
        "users": users,
        "completed": len(LEDGER.finished),
        "failed": len(LEDGER.failed),
        "seconds": round(elapsed, 1),
        "journeys_per_minute": round(len(LEDGER.finished) / elapsed * 60, 1),
    }


def _recount(env: dict[str, str]) -> list[str]:
    """`make recount` against the stack after the run: each counter must equal its records."""
    done = subprocess.run(
        [sys.executable, "-m", "local.recount"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return []
    return [line for line in done.stdout.splitlines() if line.startswith("drift")] or [done.stderr[-1000:]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--client", choices=["locust", "threads"], default="locust", help="see bench/load/threads.py")
    parser.add_argument("--api", help="a running stack's base URL (default: start one)")
    parser.add_argument("--state-dir", help="that stack's LOCAL_STATE_DIR (default .local/), to find its services")
    parser.add_argument(
        "--deadline", type=float, default=900, help="seconds before unfinished journeys count as failed"
    )
    args = parser.parse_args(argv)

    stack = None
    if args.api:
        api = args.api.rstrip("/")
        tool_env = {**os.environ, **({"LOCAL_STATE_DIR": args.state_dir} if args.state_dir else {})}
    else:
        from tests.stack import start_stack

        log = Path(tempfile.mkdtemp(prefix="bench-load-")) / "stack.log"
        stack = start_stack(log, extra_env=MAKE_RUN_SETTINGS)
        api, tool_env = stack.api, stack.tool_env()
        print(f"stack log: {log}", flush=True)
    try:
        admin = _superuser(api, tool_env)
        before = invariants.admin_stats(api, admin)
        cpu_before = cpu.by_part(stack.process.pid) if stack else {}
        if args.client == "threads":
            timings, elapsed = threads.run(api, args.users)
            report = _summary(args.users, elapsed) | timings
        else:
            environment, elapsed = _run(api, args.users, args.deadline)
            report = _report(environment, args.users, elapsed)
        if stack is not None:
            report["cpu_seconds"] = cpu.spent(cpu_before, cpu.by_part(stack.process.pid))
        rounds = MAKE_RUN_SETTINGS["BCRYPT_ROUNDS"] if stack else os.environ.get("BCRYPT_ROUNDS", "12")
        report |= floor.report(args.users, elapsed, int(rounds))
        violations = [v for j in LEDGER.finished for v in invariants.journey_violations(api, j)]
        violations += invariants.stats_violations(
            before, invariants.admin_stats(api, admin), LEDGER.finished, LEDGER.registered
        )
        violations += _recount(tool_env)
        if stack is not None:
            logs = stack.logs()
            report["emulator_races_in_log"] = logs.count("dictionary changed size during iteration")
            report["api_500s_in_log"] = logs.count('"status": 500')
    finally:
        if stack is not None:
            stack.stop()
    report["violations"] = violations
    report["errors"] = LEDGER.failed[:20]
    print(json.dumps(report, indent=2, ensure_ascii=False))
    results = PROJECT_DIR / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"load-{args.client}-{args.users}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    broken = report["failed"] or violations or report.get("emulator_races_in_log") or report.get("api_500s_in_log")
    return 1 if broken or report["completed"] != args.users else 0


if __name__ == "__main__":
    sys.exit(main())

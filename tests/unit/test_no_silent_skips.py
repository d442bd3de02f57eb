"""A test skips only for a missing external tool, fails for one under `CI=true`, and a run says what did not run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import external_tools

TESTS = Path(__file__).resolve().parents[1]
# Spelled in pieces so that this file does not match itself.
SKIPPING = re.compile(
    r"\b("
    + "|".join(["pytest" + r"\.skip\(", "import" + "orskip", "skip" + "if", "mark" + r"\.skip\b", "x" + "fail"])
    + ")"
)
MISSING_TOOL_SESSION = """
import pytest

from tests import external_tools


@pytest.fixture(scope="module")
def tool():
    external_tools.require(external_tools.CHROMIUM, False)


def test_one(tool):
    pass


def test_two(tool):
    pass


def test_without_the_tool():
    pass
"""


def test_no_test_skips_but_through_external_tools() -> None:
    allowed = {Path(external_tools.__file__).resolve()}
    found = [
        f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.resolve() not in allowed
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SKIPPING.search(line)
    ]
    assert found == [], (
        "skip only through tests/external_tools.py's require() (a missing external tool):\n" + "\n".join(found)
    )


def test_a_missing_tool_skips_on_a_developer_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="missing external tool: Chromium"):
        external_tools.require(external_tools.CHROMIUM, False)
    external_tools.require(external_tools.CHROMIUM, True)  # present: nothing happens


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"Chromium is missing and CI=true: install it with .*apt-get"):
        external_tools.require(external_tools.CHROMIUM, False)


def test_the_run_ends_by_naming_what_did_not_run_and_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(test_with_a_tool=MISSING_TOOL_SESSION)
    result = pytester.runpytest("-p", "no:cacheprovider", plugins=[external_tools])
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*tests that did not run*",
            "Browser tests did not run (2 tests): Chromium is missing. "
            "Install it with `sudo apt-get install chromium` (as .ci/run does)*",
        ]
    )


def test_under_ci_the_same_run_fails(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_with_a_tool=MISSING_TOOL_SESSION)
    result = pytester.runpytest("-p", "no:cacheprovider", plugins=[external_tools])
    result.assert_outcomes(passed=1, errors=2)
    assert "tests that did not run" not in result.stdout.str()

"""Fixtures the package, runtime and deploy tests share: `make package` once per test run."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys

import pytest

from tests.stack import PROJECT_DIR

BUILD = PROJECT_DIR / "build"


@pytest.fixture(scope="session")
def package() -> dict:
    """The prod stage packaged (`build/package/`): its template; the zip lies beside it.

    Under pytest-xdist several workers may ask at once: the first packages under a file lock and
    marks the run's id (`PYTEST_XDIST_TESTRUNUID`); the others wait and reuse what it built, so no
    worker reads a half-written directory. Without xdist every session packages afresh.
    """
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    marker = BUILD / "package" / ".test-run"
    BUILD.mkdir(exist_ok=True)
    with (BUILD / "package.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if run_id is None or not marker.exists() or marker.read_text() != run_id:
            subprocess.run([sys.executable, "-m", "infra.package", "--stage", "prod"], cwd=PROJECT_DIR, check=True)
            if run_id is not None:
                marker.write_text(run_id)
    return json.loads((BUILD / "package" / "sam.json").read_text())

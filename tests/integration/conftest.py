"""Fixtures the package, runtime and deploy tests share: `make package` once per session."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.stack import PROJECT_DIR


@pytest.fixture(scope="session")
def package() -> dict:
    """The prod stage packaged (`build/package/`): its template; the zip lies beside it."""
    subprocess.run([sys.executable, "-m", "infra.package", "--stage", "prod"], cwd=PROJECT_DIR, check=True)
    return json.loads((PROJECT_DIR / "build" / "package" / "sam.json").read_text())

"""Test-wide environment: set before any `chalicelib` import reads its settings."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# external_tools: the only skip (a missing tool) and the notice of what did not run; pytester: the
# plugins' own tests run an inner pytest.
pytest_plugins = ["tests.scan_guard", "tests.external_tools", "pytester"]

os.environ.update(
    {
        # The outbox and anything else kept locally: this process's own, never the developer's `.local/`
        # (and never another pytest-xdist worker's).
        "LOCAL_STATE_DIR": tempfile.mkdtemp(prefix="paidupload-tests-"),
        "STAGE": "test",
        "RESOURCE_PREFIX": "paidupload-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "BCRYPT_ROUNDS": "4",
        "JWT_SIGNING_KEY": "unit-test-signing-key-not-secret-0123456789",
        "PUBLIC_BASE_URL": "http://testserver",
        "LOGIN_MAX_FAILURES": "5",
    }
)
atexit.register(shutil.rmtree, os.environ["LOCAL_STATE_DIR"], ignore_errors=True)
# mock_aws() is silently bypassed when an endpoint override is present.
for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL") or n == "LOCALSTACK_HOST"]:
    del os.environ[name]


import pytest  # noqa: E402

SLOW_MARKS = ("integration", "browser")  # a stack, a browser or both per file: seconds per test, not tenths


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files that start stacks, browsers or an inner pytest run (`pytester`) first, then the rest, each
    part largest first; every file's tests stay together and in their order.

    `make test` hands files to pytest-xdist's workers in this order (`--dist loadfile
    --no-loadscope-reorder`). xdist's own order (most tests first) sent the one-test files that each run a
    stack for 20 s last, so one worker ran on alone for half a minute; ending on many short unit files, the
    workers finish within seconds of each other.
    """
    sizes: dict[object, int] = {}
    slow: set[object] = set()
    for item in items:
        sizes[item.path] = sizes.get(item.path, 0) + 1
        if "pytester" in getattr(item, "fixturenames", ()) or any(item.get_closest_marker(m) for m in SLOW_MARKS):
            slow.add(item.path)
    items.sort(key=lambda item: (item.path not in slow, -sizes[item.path]))  # stable: a file's order kept


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """One real local stack (moto server, sandbox, API, worker, scheduler) per test session."""
    from tests.stack import start_stack

    running = start_stack(tmp_path_factory.mktemp("stack") / "stack.log")
    yield running
    running.stop()

"""`LOCALSTACK_HOST` means what LocalStack's own tools (localstack-client) take it to mean; `make user`
and `make recount` say in one line what to do when the stack they need is not there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.core.config import settings
from local import env, install
from local.state import StateDir
from tests.stack import free_port


@pytest.mark.parametrize(
    ("host", "use_ssl", "endpoint"),
    [
        ("localstack", None, "http://localstack:4566"),
        ("localhost.localstack.cloud:4510", None, "http://localhost.localstack.cloud:4510"),
        ("ls:4566", "1", "https://ls:4566"),
    ],
)
def test_localstack_host_becomes_the_endpoint(
    monkeypatch: pytest.MonkeyPatch, host: str, use_ssl: str | None, endpoint: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # empty counts as unset; restored afterwards
    monkeypatch.setenv("LOCALSTACK_HOST", host)
    if use_ssl:
        monkeypatch.setenv("USE_SSL", use_ssl)
    env.apply_defaults()
    assert os.environ["AWS_ENDPOINT_URL"] == endpoint


def test_an_explicit_endpoint_wins_over_localstack_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://elsewhere:1234")
    monkeypatch.setenv("LOCALSTACK_HOST", "localstack")
    env.apply_defaults()
    assert os.environ["AWS_ENDPOINT_URL"] == "http://elsewhere:1234"


def _tool(command: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    """`make user` / `make recount` as a developer runs them, aimed at `state_dir`."""
    environment = {k: v for k, v in os.environ.items() if k not in ("STAGE", "RESOURCE_PREFIX")}
    argv = {
        "user": ["local.manage_user", "--username", "ann", "--password", "correct horse"],
        "recount": ["local.recount"],
    }
    return subprocess.run(
        [sys.executable, "-m", *argv[command]],
        env=environment | {"LOCAL_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.mark.parametrize("command", ["user", "recount"])
def test_a_tool_without_a_stack_says_in_one_line_to_start_it(tmp_path: Path, command: str) -> None:
    done = _tool(command, tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"no stack has run with its state in {tmp_path}: start `make run` first" in done.stderr
    assert "use the same LOCAL_STATE_DIR" in done.stderr


@pytest.mark.parametrize("command", ["user", "recount"])
def test_a_tool_whose_stack_stopped_says_in_one_line_to_start_it(tmp_path: Path, command: str) -> None:
    StateDir(tmp_path).write_endpoints(dict.fromkeys(("dynamodb", "s3", "sqs"), f"http://127.0.0.1:{free_port()}"))
    done = _tool(command, tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: nothing answers at http://127.0.0.1:")
    assert "start `make run` first" in done.stderr


def test_a_stack_without_the_apps_tables_is_another_state_dir() -> None:
    with mock_aws(), pytest.raises(SystemExit) as refused:
        env.require_tables()
    assert f"has no table {settings().resource_name('users')}: use the same LOCAL_STATE_DIR" in str(refused.value)


def test_a_stack_with_every_table_passes(aws_resources: dict[str, Any]) -> None:
    env.require_tables()


def test_without_python_313_localstack_is_optional_for_make_test_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(install, "python_for_localstack", lambda: None)
    assert install.ensure_localstack(tmp_path, optional=True) is None
    assert "LocalStack needs Python 3.13" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"LocalStack needs Python 3\.13 \(e\.g\. `pyenv install 3\.13`\)"):
        install.ensure_localstack(tmp_path)


def test_the_installer_puts_each_engine_where_the_stack_looks_for_it() -> None:
    from local import dynamodb_local, localstack

    assert install.DYNAMODB_LOCAL_DIR == dynamodb_local.INSTALL_DIR
    assert install.LOCALSTACK_DIR == localstack.INSTALL_DIR


def test_the_installer_runs_on_the_standard_library_alone() -> None:
    """`make test` runs `python3 -m local.install` while the project's venv is still being installed:
    a third-party import there would fail only on a fresh clone. `-S`: no site-packages at all."""
    base = getattr(sys, "_base_executable", sys.executable)  # the interpreter the venv was made from
    result = subprocess.run(
        [base, "-S", "-c", "import local.install, infra.scan"],
        cwd=Path(install.__file__).parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr

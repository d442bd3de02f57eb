"""Local defaults for the environment, shared by the stack and the management commands."""

from __future__ import annotations

import os

from localstack_client.config import get_service_endpoint


def emulator_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('EMULATOR_PORT', '4566')}"


def apply_defaults() -> None:
    """Fake credentials and a region for emulators; `LOCALSTACK_HOST` becomes an endpoint URL.

    LocalStack's own client library reads `LOCALSTACK_HOST` (`host`, `host:port`, default
    port 4566, `USE_SSL`), so we agree with LocalStack's tools on where it listens.
    """
    env = os.environ
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("STAGE", "local")
    if env["STAGE"] == "local":
        env.setdefault("AWS_ACCESS_KEY_ID", "test")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    if not env.get("AWS_ENDPOINT_URL") and env.get("LOCALSTACK_HOST"):
        env["AWS_ENDPOINT_URL"] = get_service_endpoint("edge", env["LOCALSTACK_HOST"]) or ""


def use_local_stack() -> None:
    """For `make user` and `make recount`: talk to the services the last `make run` started
    (written to `.local/endpoints.json`), unless an endpoint is configured already."""
    from pathlib import Path

    from local.state import StateDir

    apply_defaults()
    if os.environ["STAGE"] != "local" or os.environ.get("AWS_ENDPOINT_URL"):
        return
    state = StateDir(Path(os.environ.get("LOCAL_STATE_DIR") or Path(__file__).resolve().parent.parent / ".local"))
    for service, url in state.endpoints().items():
        os.environ.setdefault(f"AWS_ENDPOINT_URL_{service.upper()}", url)
    os.environ.setdefault("AWS_ENDPOINT_URL", emulator_url())

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
    (written to `.local/endpoints.json`), unless an endpoint is configured already; exit with
    one line saying what to do when no stack has run with this state directory."""
    from pathlib import Path

    from local.state import StateDir

    apply_defaults()
    if os.environ["STAGE"] != "local" or os.environ.get("AWS_ENDPOINT_URL"):
        return
    state = StateDir(Path(os.environ.get("LOCAL_STATE_DIR") or Path(__file__).resolve().parent.parent / ".local"))
    endpoints = state.endpoints()
    if not endpoints:
        raise SystemExit(
            f"error: no stack has run with its state in {state.path}: start `make run` first, "
            "or use the same LOCAL_STATE_DIR as the `make run` that holds your data"
        )
    for service, url in endpoints.items():
        os.environ.setdefault(f"AWS_ENDPOINT_URL_{service.upper()}", url)


def require_tables() -> None:
    """Exit with one line saying what to do when the app's tables are not where the command
    looks (one ListTables call): without it, a stopped stack or another `LOCAL_STATE_DIR`
    ends in a 40-line traceback about an endpoint or a missing table."""
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    from chalicelib.core.models import ALL_MODELS

    config = Config(connect_timeout=2, read_timeout=10, retries={"total_max_attempts": 1})
    dynamodb = botocore.session.get_session().create_client("dynamodb", config=config)
    url = dynamodb.meta.endpoint_url
    try:
        found = {name for page in dynamodb.get_paginator("list_tables").paginate() for name in page["TableNames"]}
    except EndpointConnectionError:
        raise SystemExit(f"error: nothing answers at {url}: start `make run` first (in another terminal)") from None
    except (BotoCoreError, ClientError) as error:
        raise SystemExit(f"error: DynamoDB at {url} could not list its tables: {error}") from None
    missing = [model.Meta.table_name for model in ALL_MODELS if model.Meta.table_name not in found]
    if missing:
        raise SystemExit(
            f"error: DynamoDB at {url} has no table {missing[0]}: use the same LOCAL_STATE_DIR "
            "(and RESOURCE_PREFIX) as the `make run` that holds your data"
        )

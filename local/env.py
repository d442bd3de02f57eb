"""Local defaults for the environment, shared by the stack and the management commands."""

from __future__ import annotations

import os


def emulator_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('EMULATOR_PORT', '4566')}"


def apply_defaults() -> None:
    """Fake credentials and a region for emulators; `LOCALSTACK_HOST` becomes an endpoint URL."""
    env = os.environ
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("STAGE", "local")
    if env["STAGE"] == "local":
        env.setdefault("AWS_ACCESS_KEY_ID", "test")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    if not env.get("AWS_ENDPOINT_URL") and env.get("LOCALSTACK_HOST"):
        host = env["LOCALSTACK_HOST"]
        env["AWS_ENDPOINT_URL"] = f"http://{host if ':' in host else host + ':4566'}"

"""Stopping the local stack's child processes, and reading why one died."""

from __future__ import annotations

import subprocess
from pathlib import Path


def stop(process: subprocess.Popen[bytes], *, grace_seconds: float) -> None:
    """SIGTERM, and SIGKILL once `grace_seconds` have passed (a hung shutdown must not hang the stack)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(log: Path) -> str:
    """The end of an engine's log, for the error that says it did not start."""
    return log.read_text(errors="replace").strip()[-2000:] if log.exists() else "(no log)"

"""Placeholder: implemented by its feature issue."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    raise NotImplementedError(f"chalicelib.worker.{name} is not built yet")

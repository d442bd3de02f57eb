"""Modules imported when first used, so each function's cold start pays only for its routes.

Lambda bills every millisecond of import on each cold start, and one `app` serves the API,
the upload worker and the reconciler: a health check need not import payments, the worker
need not import admin. `importlib.import_module` takes the import lock, so concurrent first
uses are safe; afterwards an access is one `sys.modules` lookup.
"""

from __future__ import annotations

import importlib
from typing import Any


class Lazy:
    """Stands for the module `name` and imports it at the first attribute read."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"

"""The OpenAPI 3 document, merged from one fragment per feature (`*.json` beside this file).

`base.json` holds the shared parts (info, security, error and list shapes); each feature's
fragment adds its `paths` and `components.schemas`. A test checks that every Chalice route
is documented and every documented path exists.

Imports nothing of `chalicelib`: the document is data.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

FRAGMENTS = Path(__file__).parent


@functools.lru_cache(maxsize=1)
def _merged() -> dict[str, Any]:
    document = json.loads((FRAGMENTS / "base.json").read_text(encoding="utf-8"))
    for fragment_path in sorted(FRAGMENTS.glob("*.json")):
        if fragment_path.name == "base.json":
            continue
        fragment = json.loads(fragment_path.read_text(encoding="utf-8"))
        for path, operations in fragment.get("paths", {}).items():
            document["paths"].setdefault(path, {}).update(operations)
        schemas = fragment.get("components", {}).get("schemas", {})
        document["components"]["schemas"].update(schemas)
    for operations in document["paths"].values():
        for operation in operations.values():
            _add_edge_errors(operation)
    return document


def _add_edge_errors(operation: dict[str, Any]) -> None:
    """Document the errors the HTTP edge (`chalicelib.core.web`) answers for any route of a kind,
    so no fragment has to repeat them: a body can be malformed, too large or of another
    type (400, 415); any parameter can be invalid (400); a protected route needs a token (401)."""
    codes = []
    if "requestBody" in operation:
        codes += ["400", "415"]
    if operation.get("parameters"):
        codes.append("400")
    if operation.get("security"):
        codes.append("401")
    for code in codes:
        operation["responses"].setdefault(code, {"$ref": "#/components/responses/Error"})


def document(base_url: str) -> dict[str, Any]:
    result = copy.deepcopy(_merged())
    result["servers"] = [{"url": base_url}]
    return result

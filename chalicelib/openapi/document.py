"""The OpenAPI 3 document, derived from the routes the app serves (`declare.Route`, one per
route in `routes.py`) and the answers' shapes (`components.py`): nothing about a request is
written twice, so the document says exactly what the edge checks.

Built for each `GET /api/openapi.json` (a few milliseconds); no other route imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from chalicelib.core.declare import Answer, Param, Route
from chalicelib.openapi.components import SCHEMAS

INFO = {
    "title": "Paid uploads API",
    "version": "1.0.0",
    "description": (
        "Register, pay a fixed fee through aamarPay, then upload .txt/.docx files whose words are counted in the "
        'background. Every error answers {"error": {"code", "message", "details"?}}.'
    ),
}
EDGE_ERROR = "Refused at the edge: the request does not match this document (`details` names the fields)."
_PATH_PARAMETER = re.compile(r"{(\w+)}")


def document(base_url: str, routes: Iterable[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = route.path if route.path.endswith(".json") else route.path + "/"
        paths.setdefault(path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.0.3",
        "info": INFO,
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": SCHEMAS,
        },
    }


def operation(route: Route) -> dict[str, Any]:
    """One route's operation: its parameters, body and answers, plus the errors the edge gives
    every route of its kind (a body: 400, 415; parameters: 400; a token: 401)."""
    found: dict[str, Any] = {"summary": route.summary, "tags": [route.tag]}
    if route.description:
        found["description"] = route.description
    if route.auth:
        found["security"] = [{"bearer": []}]
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(route.path)
    ]
    parameters += [_parameter(name, "query", param) for name, param in route.query.items()]
    parameters += [_parameter(name, "header", param) for name, param in route.headers.items()]
    if parameters:
        found["parameters"] = parameters
    if route.body is not None:
        schema = route.body.schema()
        found["requestBody"] = {
            "required": not route.body.may_be_empty,
            "content": {"application/json": {"schema": schema}},
        }
    if route.form is not None:
        form = {"schema": {"$ref": f"#/components/schemas/{route.form}"}}
        found["requestBody"] = {"required": False, "content": {"application/x-www-form-urlencoded": form}}
    responses = {str(status): _response(answer) for status, answer in sorted(route.answers.items())}
    edge = []
    if "requestBody" in found:
        edge += ["400", "415"]
    if any(parameter["in"] == "query" for parameter in parameters):
        edge.append("400")
    if route.auth:
        edge.append("401")
    for status in edge:
        responses.setdefault(status, _response(Answer(EDGE_ERROR, "Error")))
    if route.refused:
        responses["400"] = _with_refusals(responses.get("400") or _response(Answer(EDGE_ERROR, "Error")), route)
    found["responses"] = dict(sorted(responses.items()))
    return found


def _parameter(name: str, where: str, param: Param) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": where, "required": param.required, "schema": param.field.schema()}
    description = param.description or parameter["schema"].pop("description", "")
    if description:
        parameter["description"] = description
    return parameter


def _response(answer: Answer) -> dict[str, Any]:
    response: dict[str, Any] = {"description": answer.description or "OK"}
    if answer.schema is not None:
        schema = {"$ref": f"#/components/schemas/{answer.schema}"} if isinstance(answer.schema, str) else answer.schema
        response["content"] = {answer.media: {"schema": dict(schema)}}
    if answer.redirect:
        response["headers"] = {"Location": {"schema": {"type": "string", "format": "uri"}}}
    return response


def _with_refusals(response: dict[str, Any], route: Route) -> dict[str, Any]:
    """Say which refusals a request this document accepts may still get, and why."""
    lines = []
    for refusal in route.refused:
        fields = f" (naming {', '.join(refusal.fields)})" if refusal.fields else ""
        lines.append(f"`{refusal.code}`{fields}: {refusal.why}")
    extra = "A request matching this document may still be refused: " + "; ".join(lines) + "."
    return {**response, "description": f"{response['description']} {extra}"}

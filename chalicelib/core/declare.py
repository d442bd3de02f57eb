"""What a route takes and answers, declared once (`Route`): the edge checks every request
against it (`web.json_body`, `web.query`) and the OpenAPI document is derived from it
(`chalicelib.openapi.document`), so the two cannot disagree.

Typed stdlib dataclasses and a small derivation, not a schema library: the whole vocabulary
is five field kinds, and a library would cost every cold start its import (docs/api.md has
the measurements). Each kind knows both its JSON Schema and its check; the check's messages
are those of `validation.Fields`, which the domain still uses for rules no schema states
(password strength, matching passwords).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from chalicelib.core import errors
from chalicelib.core.validation import is_scalar_text

# Whitespace as Python sees it (`str.isspace`, `re`'s `\s`), spelled out: ECMA-262's `\s`,
# which JSON Schema patterns use, leaves out U+001C-U+001F and U+0085 and adds U+FEFF.
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{WHITESPACE}]"  # patterns search: "holds a character that is not whitespace"
_DIGITS = re.compile(r"[0-9]{1,6}")  # ASCII digits (`str.isdigit` takes `²`), few enough for `int`


@dataclass(frozen=True)
class Text:
    """A string: not blank unless `blank`, at most `max_length` characters (None: any), and
    matching `pattern` or one of `choices` (`message` says what is wanted)."""

    max_length: int | None = 1000
    pattern: str | None = None
    message: str = ""
    choices: tuple[str, ...] = ()
    blank: bool = False
    is_date: bool = False  # `YYYY-MM-DD`, a real calendar day (JSON Schema's `format: date`)
    description: str = ""
    # A rule no schema states (a password's length in bytes), checked last; its refusal is
    # documented by the route's `refused` so the fuzzer expects it.
    rule: Callable[[str], str | None] | None = None

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        if self.is_date:
            schema["format"] = "date"
        if self.choices:
            schema["enum"] = list(self.choices)
        elif self.pattern or not self.blank:
            schema["pattern"] = self.pattern or NOT_BLANK
        if not self.blank and not self.choices:
            schema["minLength"] = 1
        if self.max_length is not None and not self.choices:
            schema["maxLength"] = self.max_length
        return _described(schema, self.description or self.message)

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return "Must be a string."
        checks = (
            (is_scalar_text(value), "Must be valid Unicode text (no lone surrogates)."),
            (self.blank or bool(value.strip()), "This field may not be blank."),
            (self.max_length is None or len(value) <= self.max_length, f"At most {self.max_length} characters."),
            (not self.choices or value in self.choices, self.message or f"One of {', '.join(self.choices)}."),
            (
                not self.pattern or re.search(_ecma(self.pattern), value) is not None,
                self.message or "Has the wrong form.",
            ),
            (not self.is_date or _is_date(value), self.message or "Give a date as YYYY-MM-DD."),
        )
        found = next((message for passed, message in checks if not passed), None)
        return found or (self.rule(value) if self.rule else None)

    def from_query(self, raw: str) -> str | None:
        return self.problem(raw)


@dataclass(frozen=True)
class Integer:
    """A whole number from `minimum` to `maximum` (a JSON number, or ASCII digits in a query)."""

    minimum: int = 0
    maximum: int | None = None
    default: int | None = None
    description: str = ""

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer", "minimum": self.minimum}
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.default is not None:
            schema["default"] = self.default
        return _described(schema, self.description)

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "Must be an integer."
        if value < self.minimum:
            return f"Must be at least {self.minimum}."
        if self.maximum is not None and value > self.maximum:
            return f"Must be at most {self.maximum}."
        return None

    def from_query(self, raw: str) -> str | None:
        if _DIGITS.fullmatch(raw) and not self.problem(int(raw)):
            return None
        return f"Must be an integer from {self.minimum}" + (
            f" to {self.maximum}." if self.maximum is not None else " up."
        )


@dataclass(frozen=True)
class Boolean:
    """`true` or `false`."""

    description: str = ""

    def schema(self) -> dict[str, Any]:
        return _described({"type": "boolean"}, self.description)

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else "Must be true or false."

    def from_query(self, raw: str) -> str | None:
        return None if raw in ("true", "false") else "Must be true or false."


@dataclass(frozen=True)
class Object:
    """A JSON object whose inside another layer reads and checks (a browser's WebAuthn credential,
    which py_webauthn parses): only that it is an object is declared here."""

    description: str = ""

    def schema(self) -> dict[str, Any]:
        return _described({"type": "object", "additionalProperties": True}, self.description)

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, dict) else "Must be an object."

    def from_query(self, raw: str) -> str | None:
        return "Must be an object."


Field = Text | Integer | Boolean | Object


def _ecma(pattern: str) -> str:
    """A JSON Schema (ECMA-262) pattern for Python's `re`: there `$` also matches before a final
    newline, in ECMA only at the end."""
    return pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == len("YYYY-MM-DD")  # fromisoformat also takes "20260101"


def _described(schema: dict[str, Any], description: str) -> dict[str, Any]:
    if description:
        schema["description"] = description
    return schema


@dataclass(frozen=True)
class Param:
    """A query parameter or header: its field, whether it must be sent, and the error code a
    bad value answers (`validation_error` unless the contract names another)."""

    field: Field
    required: bool = False
    code: str = "validation_error"
    description: str = ""


@dataclass(frozen=True)
class Body:
    """A JSON object body: these fields and no others (`null` counts as absent). `optional`:
    the whole body may be left out (an empty request body)."""

    required: Mapping[str, Field] = field(default_factory=dict)
    optional: Mapping[str, Field] = field(default_factory=dict)
    may_be_empty: bool = False
    description: str = ""

    def schema(self) -> dict[str, Any]:
        properties = {name: kind.schema() for name, kind in self.required.items()}
        for name, kind in self.optional.items():
            properties[name] = {**kind.schema(), "nullable": True}
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if self.required:
            schema["required"] = list(self.required)
        return _described(schema, self.description)

    def problems(self, body: dict[str, Any]) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, kind in {**self.required, **self.optional}.items():
            value = body.get(name)
            if value is None:
                if name in self.required:
                    found[name] = "This field is required."
            elif problem := kind.problem(value):
                found[name] = problem
        for name in body:
            if name not in self.required and name not in self.optional:
                found[str(name)] = "Unknown field."
        return found


@dataclass(frozen=True)
class Answer:
    """A documented answer: its body's schema (a component's name or a schema), if any."""

    description: str = ""
    schema: str | Mapping[str, Any] | None = None
    media: str = "application/json"
    redirect: bool = False  # a `Location` header, no body


def page_of(item: str) -> dict[str, Any]:
    """The schema of one page of a list of the component `item` (`pagination`'s answer)."""
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
            "next_cursor": {"type": "string", "nullable": True},
        },
    }


def error(description: str = "An error in the contract's shape.") -> Answer:
    return Answer(description, "Error")


@dataclass(frozen=True)
class Refusal:
    """An error a request the schema accepts may still get, for a reason no schema states:
    `code`, naming (for `validation_error`) only `fields` in its details."""

    code: str
    fields: tuple[str, ...] = ()
    why: str = ""


@dataclass(frozen=True)
class Route:
    """One route: where it is, who may call it, what it takes and what it answers.

    `body` and `query` are checked when the handler reads them (`web.json_body`, `web.query`),
    so a protected route still answers 401 before it looks at its input. `form` (a gateway
    return, whose fields are hints the domain checks) and `headers` are documented only."""

    method: str
    path: str  # without the trailing slash (API Gateway drops it before matching)
    summary: str
    tag: str
    answers: Mapping[int, Answer]
    auth: bool = True
    body: Body | None = None
    form: str | None = None  # a component schema's name
    query: Mapping[str, Param] = field(default_factory=dict)
    headers: Mapping[str, Param] = field(default_factory=dict)
    refused: tuple[Refusal, ...] = ()
    description: str = ""

    def check_body(self, body: dict[str, Any]) -> None:
        if self.body is not None and (found := self.body.problems(body)):
            raise errors.ValidationError("Some fields are invalid.", details=found)

    def check_query(self, query: Mapping[str, str]) -> None:
        """One 400 for the first bad parameter, with the code the contract gives it."""
        for name, param in self.query.items():
            raw = query.get(name)
            problem = "is required." if raw is None and param.required else None
            if raw is not None and (found := param.field.from_query(raw)):
                problem = found[0].lower() + found[1:]
            if problem:
                raise errors.ValidationError(f"{name} {problem}", code=param.code, details={name: problem})

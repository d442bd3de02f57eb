"""`GET /api/me/export/`: everything held about the caller, complete, as one JSON document.

Each list is the caller's own partition read page by page (a Query on a key or index, newest
first, `PAGE_SIZE` items a page), each item in the shape its list endpoint answers; files
include the ones the owner deleted (the records stay, for staff). Items are serialized as they
are read, so memory holds one page of records plus the text; the text is bounded by
`MAX_EXPORT_BYTES`, under Lambda's 6 MB response limit: an account past it answers
`413 data_too_large` instead of a response Lambda would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib import payments
from chalicelib.accounts.accounts import Principal, user_view
from chalicelib.core import activity, clock, errors
from chalicelib.core.models import Activity, File, Payment
from chalicelib.files import quota, uploads

PAGE_SIZE = 100
MAX_EXPORT_BYTES = 5 * 1024 * 1024


class ExportTooLarge(errors.ApiError):
    status, code = 413, "data_too_large"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _Document:
    """The JSON text, built part by part within `MAX_EXPORT_BYTES`."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.size += len(text.encode("utf-8"))
        if self.size > MAX_EXPORT_BYTES:
            raise ExportTooLarge(
                f"Your data is larger than {MAX_EXPORT_BYTES // (1024 * 1024)} MB, more than one download can carry; "
                "please contact support for a copy."
            )
        self.parts.append(text)

    def items(self, name: str, records: Iterable[Any], view: Callable[[Any], dict[str, Any]]) -> None:
        self.write(f',"{name}":[')
        for n, record in enumerate(records):
            self.write(("," if n else "") + _dumps(view(record)))
        self.write("]")


def export(principal: Principal) -> str:
    """The caller's account, payments, files and activity, newest first: the JSON text."""
    user = principal.user
    document = _Document()
    document.write('{"user":' + _dumps({**user_view(user), "language": user.language, "usage": quota.usage_view(user)}))
    pages: dict[str, Any] = {"scan_index_forward": False, "page_size": PAGE_SIZE}  # newest first
    document.items("payments", Payment.by_user.query(user.id, **pages), payments.payment_view)
    document.items("files", File.by_user.query(user.id, **pages), uploads.file_view)
    document.items("activity", Activity.query(user.id, **pages), activity.view)
    document.write("}")
    return "".join(document.parts)


def filename() -> str:
    return f"my-data-{clock.now().date().isoformat()}.json"

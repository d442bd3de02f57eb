"""The accountant's CSV of payments: one UTC date range, newest first, no Scan.

The rows come from the day-sharded indexes (`by_day`, or `by_status_day` with a status),
one Query page at a time, and each page's user names from one batch read. Chalice (and API
Gateway's Lambda proxy) cannot stream a body, so the text is built page by page in memory
and capped at `MAX_ROWS` (about 2 MB, well under Lambda's 6 MB response limit): a range with
more payments than that is refused with a 400 that says to narrow it, never cut short silently.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from chalicelib.accounts import directory
from chalicelib.core import clock, errors, pagination
from chalicelib.core.models import Payment
from chalicelib.staff import stats

HEADER = (
    "transaction_id",
    "username",
    "user_id",
    "status",
    "amount",
    "currency",
    "gateway_transaction_id",
    "created_at",
    "updated_at",
)
MAX_DAYS = 366
MAX_ROWS = 10_000
PAGE_SIZE = 100
# A cell starting with one of these is a formula to Excel/LibreOffice/Sheets (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def date_range(query: dict[str, str]) -> tuple[date, date]:
    """`from` and `to` (inclusive, YYYY-MM-DD), at most `MAX_DAYS` days apart."""
    problems: dict[str, str] = {}
    parsed: dict[str, date] = {}
    for name in ("from", "to"):
        raw = query.get(name) or ""
        try:
            if len(raw) != len("YYYY-MM-DD"):  # fromisoformat also takes "20260101" and more
                raise ValueError(raw)
            parsed[name] = date.fromisoformat(raw)
        except ValueError:
            problems[name] = "Give a date as YYYY-MM-DD."
    if not problems and parsed["from"] > parsed["to"]:
        problems["to"] = "The end date is before the start date."
    if not problems and (parsed["to"] - parsed["from"]).days + 1 > MAX_DAYS:
        problems["to"] = f"A range covers at most {MAX_DAYS} days."
    if problems:
        raise errors.ValidationError("Choose a valid date range.", details=problems)
    return parsed["from"], parsed["to"]


def safe_cell(value: Any) -> str:
    """The cell's text, with a leading apostrophe when a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def _day_pages(day: str, status: str | None) -> Any:
    """Every Query page of one day's payments, newest first."""
    index, key = (Payment.by_status_day, f"{status}#{day}") if status else (Payment.by_day, day)
    lek = None
    while True:
        results = pagination.newest_first(index.query, key)(lek, PAGE_SIZE)
        page = list(results)
        lek = results.last_evaluated_key
        yield page
        if not lek:
            return


def transactions_csv(first: date, last: date, status: str | None) -> str:
    """The CSV text (header first) of the payments created from `first` to `last`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    rows = 0
    names: dict[str, str] = {}  # kept across pages: a regular payer is looked up once
    # Nothing exists before the service's first day or after today: those days are not queried.
    oldest, newest = max(first, stats.feed_start()), min(last, clock.now().date())
    for day in pagination.days_back(newest, oldest):
        for page in _day_pages(day.isoformat(), status):
            rows += len(page)
            if rows > MAX_ROWS:
                raise errors.ValidationError(
                    f"More than {MAX_ROWS} payments in that range; export a shorter range.", code="export_too_large"
                )
            names.update(directory.usernames({p.user_id for p in page} - names.keys()))
            for p in page:
                cells = (p.transaction_id, names.get(p.user_id), p.user_id, p.status, p.amount, p.currency)
                writer.writerow(safe_cell(c) for c in (*cells, p.gateway_transaction_id, p.created_at, p.updated_at))
    return out.getvalue()


def filename(first: date, last: date) -> str:
    return f"transactions-{first.isoformat()}-{last.isoformat()}.csv"

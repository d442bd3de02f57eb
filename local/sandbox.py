"""A faithful fake of aamarPay for local runs and tests (dev tooling, never shipped to Lambda).

Answers as the real gateway does (shared/aamarpay-protocol.md, section 5; the shapes are in
`local.sandbox_replies` and a test holds them against the corpus in tests/aamarpay_replies.py).
Every JSON reply is served as `text/html`, as the gateway labels it.
- `POST /jsonpost.php` and `POST /index.php`: a JSON body, or a form body with `type=json` (the
  PyPI `aamarpay` client's), both answered `{"result": "true", "payment_url": ".../paynow.php?track=…"}`.
  Refusals arrive with HTTP 200: wrong credentials `{"result": false, "message": "Invalid Signature Key"}`
  (or "Invalid Store ID"), a body that is neither JSON nor a form the plain text `invalid json`,
  missing or malformed fields an object without `result`, a reused `tran_id` aamarPay's "Dublicate".
  The address fields (`cus_add1` … `cus_country`) are optional.
- `GET /paynow.php?track=…`: the hosted page with "Pay", "Pay (risky card)", "Fail" and "Cancel".
  Pay/Fail answer an auto-submitting form that makes the browser POST the 2025 return fields to
  success_url/fail_url; Cancel sends the browser to cancel_url with no data.
- `GET /api/v1/trxcheck/request.php`: the search API. Wrong store or key: the plain text
  `Store_id & signature key not matched`; an unknown `request_id`: `{"request_id", "store_id",
  "status": "Invalid-Data"}`; a transaction: its record (`Incomplete`/0, `Successful`/2,
  `Expired`/3, `Failed`/7).

Where aamarPay documents nothing, this emulator picks (and tests rely on):
- Cancel on the hosted page changes nothing: no "Cancelled" state was ever seen, so the transaction
  stays as it was (`Incomplete`/0 until it expires or is paid); the page stays payable after Fail or
  Cancel (customers retry) but not after Pay or expiry. Nothing expires by the clock: expiry is
  `POST /__sandbox/settle {"outcome": "expired"}` (or `Sandbox.expire`).
- a USD payment is converted at the fixed `USD_RATE`; the fee is 2.1 % of the taka amount.
- a search with `type` other than `json` answers the plain text `Invalid Request Type` (never captured).

Fault switches (`POST /__sandbox/faults` with a JSON object, or `Sandbox.set_faults`), see `FAULTS`.
`POST /__sandbox/settle {"tran_id", "outcome": "paid"|"failed"|"expired", "risky": bool}` settles
without a browser and without the return POST (a customer who closed the tab);
`POST /__sandbox/reset` forgets everything. `Sandbox.hits` counts requests per endpoint, so tests
can tell a retry from a single call.

Run alone: `python -m local.sandbox --port 8001`.
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from chalicelib.core.config import SANDBOX_SIGNATURE_KEY, SANDBOX_STORE_ID
from chalicelib.core.validation import is_web_url
from local.sandbox_replies import (
    ADDRESS_FIELDS,
    OPT_FIELDS,
    RATES,
    Money,
    Transaction,
    invalid_data,
    return_form,
    search_record,
)
from local.servers import BurstWSGIServer

# What each fault does and its value when off. Switches take true (until cleared) or a count N
# (the next N requests, or payments for risky_card, that they apply to); overrides take a string
# (or null to clear).
FAULTS: dict[str, tuple[Any, str]] = {
    "initiate_timeout": (False, "switch: sleep delay_seconds, then create the transaction anyway"),
    "initiate_500": (False, "switch: HTTP 500 with an HTML body, nothing created"),
    "initiate_garbage": (False, "switch: HTTP 200 with an HTML maintenance page, nothing created"),
    "initiate_invalid_json": (False, 'switch: the plain text "invalid json", nothing created'),
    "initiate_bad_key": (
        False,
        'switch: refuse as for a wrong key: {"result": false, "message": "Invalid Signature Key"}',
    ),
    "initiate_duplicate": (
        False,
        'switch: refuse as for a reused tran_id: {"tran_id": "Dublicate …"}, nothing created',
    ),
    "legacy_refusals": (
        False,
        'switch: credential refusals at initiation are the older bare JSON strings ("Invalid Store ID")',
    ),
    "search_timeout": (False, "switch: sleep delay_seconds, then answer normally"),
    "search_500": (False, "switch: HTTP 500 with an HTML body"),
    "search_garbage": (False, "switch: HTTP 200 with truncated JSON"),
    "search_unknown": (
        False,
        'switch: answer {"request_id", "store_id", "status": "Invalid-Data"} for every request_id',
    ),
    "search_bad_credentials": (False, 'switch: answer the plain text "Store_id & signature key not matched"'),
    "search_legacy": (
        False,
        'switch: the 2021 record: every value a string, no amount_original etc., error_code "0000"',
    ),
    "risky_card": (False, 'switch: the next payment(s) succeed with risk level "1" (risk_title "High")'),
    "cancel_by_post": (False, "switch: Cancel makes the browser POST an empty form to cancel_url (not a GET)"),
    "search_status": (None, "override: report this pay_status (status_code follows it)"),
    "search_amount": (None, "override: report this merchant amount (amount_original; the taka amount follows)"),
    "search_currency": (None, "override: report this merchant currency (currency_merchant; the taka amount follows)"),
    "search_store": (None, "override: report this store_id"),
    "search_risk": (
        None,
        'override: report this risk_level (not "0": the card\'s issuer flagged it; risk_title "High")',
    ),
    "delay_seconds": (12.0, "setting: how long the *_timeout faults sleep (longer than the client's 10 s)"),
}
_SWITCHES = {name for name, (off, _) in FAULTS.items() if off is False}

REQUIRED_FIELDS = (
    "store_id",
    "signature_key",
    "tran_id",
    "amount",
    "currency",
    "desc",
    "cus_name",
    "cus_email",
    "cus_phone",
    "success_url",
    "fail_url",
    "cancel_url",
    "type",
)
OPTIONAL_FIELDS = ADDRESS_FIELDS + OPT_FIELDS
CREDENTIALS_NOT_MATCHED = "Store_id & signature key not matched"
INVALID_JSON = "invalid json"
DUPLICATE = {"tran_id": "Dublicate Transaction ID Provided By You."}
DHAKA = timezone(timedelta(hours=6))
_AMOUNT = re.compile(r"\d+(\.\d{1,2})?")
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_GATEWAY_CONTENT_TYPE = "text/html; charset=UTF-8"  # the gateway labels its JSON and text as HTML
_MAINTENANCE_PAGE = "<html><body><h1>We'll be back soon</h1><p>Scheduled maintenance.</p></body></html>"
_SERVER_ERROR_PAGE = "<html><body><h1>500 Internal Server Error</h1></body></html>"
_TRUNCATED_JSON = '{"pay_status": "Successful", "status_code": "2", "amount": "10'


def _now() -> str:
    return datetime.now(DHAKA).strftime("%Y-%m-%d %H:%M:%S")


def _json(value: Any, status: int = 200) -> Response:
    """Our own control API's answers (real JSON)."""
    return Response(json.dumps(value), status=status, mimetype="application/json")


def _gateway(value: Any) -> Response:
    """A gateway answer: JSON with HTTP 200, labelled as HTML."""
    return _gateway_text(json.dumps(value))


def _gateway_text(body: str) -> Response:
    """A gateway answer that is not JSON (or not only), with HTTP 200, labelled as HTML."""
    return Response(body, content_type=_GATEWAY_CONTENT_TYPE)


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html")


_GARBAGE = {
    "initiate": lambda: _html(_MAINTENANCE_PAGE),  # a maintenance page, still HTTP 200
    "search": lambda: _gateway_text(_TRUNCATED_JSON),  # cut-off JSON
}


def _page(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}"
        "dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}dt{font-weight:600}"
        "button{font-size:1rem;padding:.5rem 1.2rem;margin:0 .5rem .5rem 0}</style></head>"
        f"<body><main><h1>aamarPay sandbox</h1>{content}</main></body></html>"
    )


# The hosted page's buttons: action value → label.
ACTIONS = {"pay": "Pay", "pay_risky": "Pay (risky card)", "fail": "Fail", "cancel": "Cancel"}


class Sandbox:
    """The emulator's state and WSGI app; every method is safe to call from any thread."""

    def __init__(self, store_id: str, signature_key: str, *, delay_seconds: float = 12.0) -> None:
        self.store_id = store_id
        self.signature_key = signature_key
        self._default_delay = delay_seconds
        self._lock = threading.Lock()
        self._tracks = itertools.count(100000)
        self._transactions: dict[str, Transaction] = {}
        self._by_track: dict[str, str] = {}
        self._faults: dict[str, Any] = {}
        self.hits: Counter[str] = Counter()  # requests per endpoint, for tests that count retries
        self.reset()
        self._routes = Map(
            [
                Rule("/jsonpost.php", endpoint="initiate", methods=["POST"]),
                Rule("/index.php", endpoint="initiate", methods=["POST"]),
                Rule("/paynow.php", endpoint="pay_page", methods=["GET"]),
                Rule("/paynow.php", endpoint="pay_action", methods=["POST"]),
                Rule("/api/v1/trxcheck/request.php", endpoint="search", methods=["GET"]),
                Rule("/__sandbox/faults", endpoint="control_faults", methods=["GET", "POST"]),
                Rule("/__sandbox/reset", endpoint="control_reset", methods=["POST"]),
                Rule("/__sandbox/settle", endpoint="control_settle", methods=["POST"]),
            ]
        )

    # --- Python control API (tests) ------------------------------------------------------

    def reset(self) -> None:
        """Forget every transaction and clear every fault."""
        with self._lock:
            self._transactions.clear()
            self._by_track.clear()
            self.hits.clear()
            self._faults = {name: off for name, (off, _) in FAULTS.items()}
            self._faults["delay_seconds"] = self._default_delay

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Switch faults on or off (see `FAULTS`); returns them all. Bad names/values → ValueError."""
        for name, value in changes.items():
            _check_fault(name, value)
        with self._lock:
            for name, value in changes.items():
                self._faults[name] = FAULTS[name][0] if value is None else value
            return dict(self._faults)

    def settle(self, tran_id: str, *, paid: bool, risky: bool = False) -> Transaction:
        """Pay (with a risky card if asked) or fail a transaction server-side, as if the customer
        clicked and closed the tab."""
        return self._finish(tran_id, "Successful" if paid else "Failed", risky=risky)

    def expire(self, tran_id: str) -> Transaction:
        """End an unpaid transaction as the gateway does when its window passes."""
        return self._finish(tran_id, "Expired")

    def transaction(self, tran_id: str) -> Transaction | None:
        with self._lock:
            return self._transactions.get(tran_id)

    def _finish(self, tran_id: str, status: str, *, risky: bool = False) -> Transaction:
        with self._lock:
            transaction = self._transactions.get(tran_id)
            if transaction is None:
                raise KeyError(tran_id)
            self._complete(transaction, status, risky=risky)
            return transaction

    # --- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            endpoint, _ = self._routes.bind_to_environ(environ).match()
            with self._lock:
                self.hits[endpoint] += 1
            response = getattr(self, f"_{endpoint}")(request)
        except HTTPException as error:
            response = error.get_response()
        return response(environ, start_response)

    def _take(self, name: str) -> Any:
        with self._lock:
            return self._use(name)

    def _use(self, name: str) -> Any:
        """A fault's current value (lock held); a counted switch is used up by one use."""
        value = self._faults[name]
        if name in _SWITCHES and type(value) is int:
            self._faults[name] = value - 1 if value > 1 else False
        return value

    def _injected(self, api: str) -> Response | None:
        """The faulty answer switched on for `api` ("initiate" or "search"); a timeout only stalls."""
        if self._take(f"{api}_500"):
            return _html(_SERVER_ERROR_PAGE, 500)
        if self._take(f"{api}_garbage"):
            return _GARBAGE[api]()
        if self._take(f"{api}_timeout"):
            time.sleep(self._take("delay_seconds"))
        return None

    # --- initiate ------------------------------------------------------------------------

    def _initiate(self, request: Request) -> Response:
        injected = self._injected("initiate")
        if injected:
            return injected
        fields = _initiation_fields(request)
        if fields is None or self._take("initiate_invalid_json"):
            return _gateway_text(INVALID_JSON)
        refusal = self._initiation_refusal(fields)
        if refusal is not None:
            return _gateway(refusal)
        kept = {name: fields[name] for name in REQUIRED_FIELDS + OPTIONAL_FIELDS if name in fields}
        del kept["store_id"], kept["signature_key"]
        duplicate = self._take("initiate_duplicate")
        with self._lock:
            if duplicate or kept["tran_id"] in self._transactions:
                return _gateway(DUPLICATE)
            track = f"AAM{int(time.time())}{next(self._tracks) % 1_000_000:06d}"
            self._transactions[kept["tran_id"]] = Transaction(fields=kept, track=track, created=_now())
            self._by_track[track] = kept["tran_id"]
        base = request.host_url.rstrip("/")
        return _gateway({"result": "true", "payment_url": f"{base}/paynow.php?track={track}"})

    def _initiation_refusal(self, fields: dict[str, str]) -> Any:
        """Wrong credentials (today's object, or the older bare string), then field problems; None if fine."""
        if fields.get("store_id") != self.store_id:
            message: str | None = "Invalid Store ID"
        elif fields.get("signature_key") != self.signature_key or self._take("initiate_bad_key"):
            message = "Invalid Signature Key"
        else:
            return _field_problems(fields) or None
        return message if self._take("legacy_refusals") else {"result": False, "message": message}

    # --- hosted payment page -------------------------------------------------------------

    def _tracked(self, request: Request) -> Transaction:
        with self._lock:
            tran_id = self._by_track.get(request.args.get("track", ""))
            if tran_id is None:
                raise NotFound("Invalid payment link.")
            return self._transactions[tran_id]

    def _pay_page(self, request: Request) -> Response:
        transaction = self._tracked(request)
        fields = transaction.fields
        money = Money.of(fields["amount"], fields["currency"])
        charged = f" (charged as {money.taka} BDT)" if money.foreign else ""
        details = (
            f"<dl><dt>Merchant</dt><dd>{html.escape(self.store_id)}</dd>"
            f"<dt>Amount</dt><dd>{html.escape(fields['amount'])} {html.escape(fields['currency'])}"
            f"{charged}</dd>"
            f"<dt>Description</dt><dd>{html.escape(fields['desc'])}</dd>"
            f"<dt>Transaction</dt><dd>{html.escape(transaction.tran_id)}</dd></dl>"
        )
        if transaction.paid:
            actions = "<p role='status'>This payment is already complete.</p>"
        elif transaction.status == "Expired":
            actions = "<p role='status'>This payment link has expired.</p>"
        else:
            buttons = "".join(
                f'<button type="submit" name="action" value="{value}">{label}</button>'
                for value, label in ACTIONS.items()
            )
            actions = (
                f'<form method="post" action="/paynow.php?track={html.escape(transaction.track)}">{buttons}</form>'
            )
        return _html(_page(f"Pay {fields['amount']} {fields['currency']}", details + actions))

    def _pay_action(self, request: Request) -> Response:
        transaction = self._tracked(request)
        action = request.form.get("action", "")
        if action not in ACTIONS:
            return _html(_page("Bad request", "<p>Unknown action.</p>"), 400)
        with self._lock:
            if transaction.paid:
                return _html(_page("Already paid", "<p>This payment is already complete.</p>"), 409)
            if transaction.status == "Expired":
                return _html(_page("Expired", "<p>This payment link has expired.</p>"), 410)
            if action == "cancel":
                return self._cancel(transaction)
            status = "Failed" if action == "fail" else "Successful"
            self._complete(transaction, status, risky=action == "pay_risky", ip=request.remote_addr or "")
            form = return_form(transaction, self.store_id, request.remote_addr or "")
        target = transaction.fields["success_url" if transaction.paid else "fail_url"]
        return _html(_auto_submit(target, form))

    def _cancel(self, transaction: Transaction) -> Response:
        """Back to cancel_url with no data (lock held); the transaction stays as it was."""
        target = transaction.fields["cancel_url"]
        if self._use("cancel_by_post"):
            return _html(_auto_submit(target, {}))
        return redirect(target, 303)

    def _complete(self, transaction: Transaction, status: str, *, risky: bool = False, ip: str = "") -> None:
        """Record an outcome (lock held); a successful or expired transaction is final, as at the gateway."""
        if transaction.status in ("Successful", "Expired"):
            return
        transaction.status = status
        transaction.pay_time = _now()
        transaction.ip = ip
        if status == "Successful" and (risky or self._use("risky_card")):
            transaction.risk_level = "1"

    # --- search API ----------------------------------------------------------------------

    def _search(self, request: Request) -> Response:
        injected = self._injected("search")
        if injected:
            return injected
        args = request.args
        credentials = (args.get("store_id"), args.get("signature_key"))
        if self._take("search_bad_credentials") or credentials != (self.store_id, self.signature_key):
            return _gateway_text(CREDENTIALS_NOT_MATCHED)
        if args.get("type") != "json":
            return _gateway_text("Invalid Request Type")
        request_id = args.get("request_id", "")
        unknown = self._take("search_unknown")
        legacy = self._take("search_legacy")
        with self._lock:
            transaction = self._transactions.get(request_id)
            if unknown or transaction is None:
                return _gateway(invalid_data(request_id, self.store_id))
            return _gateway(self._search_record(transaction, legacy=bool(legacy)))

    def _search_record(self, transaction: Transaction, *, legacy: bool) -> dict[str, Any]:
        """The search-API object (lock held), overrides applied."""
        fields = transaction.fields
        money = Money.of(
            self._faults["search_amount"] or fields["amount"], self._faults["search_currency"] or fields["currency"]
        )
        return search_record(
            transaction,
            self._faults["search_store"] or self.store_id,
            status=self._faults["search_status"] or transaction.status,
            money=money,
            risk_level=self._faults["search_risk"] or transaction.risk_level,
            legacy=legacy,
        )

    # --- control API over HTTP -----------------------------------------------------------

    def _control_faults(self, request: Request) -> Response:
        if request.method == "GET":
            with self._lock:
                return _json(dict(self._faults))
        changes = request.get_json(silent=True)
        if not isinstance(changes, dict):
            return _json({"error": "send a JSON object of fault names"}, 400)
        try:
            return _json(self.set_faults(**changes))
        except ValueError as error:
            return _json({"error": str(error)}, 400)

    def _control_reset(self, _request: Request) -> Response:
        self.reset()
        return _json({"reset": True})

    def _control_settle(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        outcome, risky = body.get("outcome"), body.get("risky", False)
        if outcome not in ("paid", "failed", "expired") or not isinstance(risky, bool):
            return _json(
                {"error": 'send {"tran_id": "...", "outcome": "paid" | "failed" | "expired", "risky": bool}'}, 400
            )
        tran_id = str(body.get("tran_id", ""))
        try:
            if outcome == "expired":
                transaction = self.expire(tran_id)
            else:
                transaction = self.settle(tran_id, paid=outcome == "paid", risky=risky)
        except KeyError:
            return _json({"error": "unknown tran_id"}, 404)
        return _json({"tran_id": transaction.tran_id, "pay_status": transaction.status})


def _initiation_fields(request: Request) -> dict[str, str] | None:
    """The initiate body as strings: a form (first value of each field) or a JSON object; None if neither."""
    if request.mimetype in _FORMS:
        return dict(request.form.items())
    try:
        body = json.loads(request.get_data(as_text=True))
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    return {
        str(key): str(value)
        for key, value in body.items()
        if isinstance(value, (str, int, float)) and not isinstance(value, bool)
    }


def _field_problems(fields: dict[str, str]) -> dict[str, str]:
    """Missing or malformed fields, answered in the gateway's object-without-`result` style."""
    problems = {name: f"{name} is required." for name in REQUIRED_FIELDS if not fields.get(name, "").strip()}
    if problems:
        return problems
    if len(fields["tran_id"]) > 32:
        problems["tran_id"] = "Transaction ID must be at most 32 characters."
    if not _AMOUNT.fullmatch(fields["amount"]) or Decimal(fields["amount"]) <= 0:
        problems["amount"] = "Invalid Amount."
    if fields["currency"] not in RATES:
        problems["currency"] = "Invalid Currency."
    if fields["type"] != "json":
        problems["type"] = "Invalid Request Type."
    for name in ("success_url", "fail_url", "cancel_url"):
        if not is_web_url(fields[name]):
            problems[name] = "Invalid URL."
    return problems


def _check_fault(name: str, value: Any) -> None:
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
    if value is None:
        return
    if name == "delay_seconds":
        valid = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    elif name in _SWITCHES:
        valid = isinstance(value, bool) or (isinstance(value, int) and value >= 0)
    else:
        valid = isinstance(value, str)
    if not valid:
        raise ValueError(f"bad value for {name}: {value!r} ({FAULTS[name][1]})")


def _auto_submit(target: str, fields: dict[str, str]) -> str:
    """The page that makes the browser POST the form back, with a button for browsers without JS."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    form = (
        f'<form id="return" method="post" action="{html.escape(target)}" '
        f'enctype="application/x-www-form-urlencoded">{inputs}'
        "<p>Returning you to the merchant…</p>"
        '<button type="submit">Return to merchant</button></form>'
        '<script>document.getElementById("return").submit();</script>'
    )
    return _page("Returning to merchant", form)


class SandboxServer:
    """The emulator on a real socket in a background thread; port 0 picks a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        store_id: str | None = None,
        signature_key: str | None = None,
        *,
        delay_seconds: float = 12.0,
    ) -> None:
        self.host = host
        self.port = port
        # Same defaults as the app (chalicelib.core.config), so `make run` works with no settings.
        self.sandbox = Sandbox(
            store_id or os.environ.get("AAMARPAY_STORE_ID") or SANDBOX_STORE_ID,
            signature_key or os.environ.get("AAMARPAY_SIGNATURE_KEY") or SANDBOX_SIGNATURE_KEY,
            delay_seconds=delay_seconds,
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self._server.port}"

    def start(self) -> SandboxServer:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = BurstWSGIServer(self.host, self.port, self.sandbox)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aamarpay-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the aamarPay sandbox emulator alone.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    server = SandboxServer(args.host, args.port).start()
    print(f"aamarPay sandbox on {server.url} (store_id={server.sandbox.store_id}). Ctrl-C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A faithful fake of aamarPay for local runs and tests (dev tooling, never shipped to Lambda).

Speaks the wire format of /work/shared/aamarpay-protocol.md, quirks included:
- `POST /jsonpost.php`: errors arrive with HTTP 200 as a bare JSON string (bad credentials) or an
  object without `result` (missing/invalid fields, reused `tran_id`, with aamarPay's "Dublicate");
  success is `{"result": "true", "payment_url": ".../paynow.php?track=AAM<16 digits>"}`.
- `GET /paynow.php?track=…`: the hosted page with buttons "Pay", "Fail" and "Cancel". Pay/Fail answer
  an auto-submitting form that makes the browser POST the gateway's fields to success_url/fail_url;
  Cancel redirects the browser to cancel_url with no data.
- `GET /api/v1/trxcheck/request.php`: the search API, every value a string.

Where aamarPay documents nothing, this emulator picks (and tests rely on):
- the four cus_* address fields the official Node sample marks required (add1, add2, city, country)
  are required here too, so our client is held to the strictest reading;
- a transaction never completed searches as `pay_status "Pending"`, `status_code "0"`; a failed one
  as `"Failed"`/`"7"`, a cancelled one as `"Cancelled"`/`"7"`; an unknown `request_id` as `{}`;
- the hosted page stays payable after Fail or Cancel (customers retry) but not after Pay;
- the fee is 2.1 % (the protocol's example: store_amount "9.79" of "10.00").

Fault switches (`POST /__sandbox/faults` with a JSON object, or `Sandbox.set_faults`), see `FAULTS`.
`POST /__sandbox/settle {"tran_id", "outcome": "paid"|"failed"}` settles without a browser and
without the return POST (a customer who closed the tab); `POST /__sandbox/reset` forgets everything.
`Sandbox.hits` counts requests per endpoint, so tests can tell a retry from a single call.

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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from chalicelib.core.config import SANDBOX_SIGNATURE_KEY, SANDBOX_STORE_ID
from chalicelib.core.validation import is_web_url
from local.servers import BurstWSGIServer

# What each fault does and its value when off. Switches take true (until cleared) or a count N
# (the next N requests only); overrides take a string (or null to clear).
FAULTS: dict[str, tuple[Any, str]] = {
    "initiate_timeout": (False, "switch: sleep delay_seconds, then create the transaction anyway"),
    "initiate_500": (False, "switch: HTTP 500 with an HTML body, nothing created"),
    "initiate_garbage": (False, "switch: HTTP 200 with an HTML maintenance page, nothing created"),
    "search_timeout": (False, "switch: sleep delay_seconds, then answer normally"),
    "search_500": (False, "switch: HTTP 500 with an HTML body"),
    "search_garbage": (False, "switch: HTTP 200 with truncated JSON"),
    "search_unknown": (False, 'switch: answer {} for every request_id; "list" answers [] instead'),
    "search_status": (None, "override: report this pay_status (status_code follows it)"),
    "search_amount": (None, "override: report this amount"),
    "search_currency": (None, "override: report this currency"),
    "search_store": (None, "override: report this store_id"),
    "search_risk": (None, 'override: report this risk_level (not "0": the card\'s issuer flagged it)'),
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
    "cus_add1",
    "cus_add2",
    "cus_city",
    "cus_country",
    "success_url",
    "fail_url",
    "cancel_url",
    "type",
)
OPTIONAL_FIELDS = ("cus_state", "cus_postcode", "opt_a", "opt_b", "opt_c", "opt_d")
STATUS_CODES = {
    "Pending": ("0", "Pending Transaction"),
    "Successful": ("2", "Successful Transaction"),
    "Failed": ("7", "Failed Transaction"),
    "Cancelled": ("7", "Cancelled Transaction"),
}
FEE_RATIO = Decimal("0.021")
CARD_TYPE = "bKash-bKash"
DHAKA = timezone(timedelta(hours=6))
_AMOUNT = re.compile(r"\d+(\.\d{1,2})?")
_CENTS = Decimal("0.01")
_MAINTENANCE_PAGE = "<html><body><h1>We'll be back soon</h1><p>Scheduled maintenance.</p></body></html>"
_SERVER_ERROR_PAGE = "<html><body><h1>500 Internal Server Error</h1></body></html>"
_TRUNCATED_JSON = '{"pay_status": "Successful", "status_code": "2", "amount": "10'


@dataclass
class Transaction:
    """One initiated payment as the gateway remembers it."""

    fields: dict[str, str]  # the initiate body, credentials excluded
    track: str
    created: str
    status: str = "Pending"
    pay_time: str = ""

    @property
    def tran_id(self) -> str:
        return self.fields["tran_id"]

    def money(self) -> dict[str, str]:
        amount = Decimal(self.fields["amount"])
        charge = (amount * FEE_RATIO).quantize(_CENTS, ROUND_HALF_UP)
        return {
            "amount": self.fields["amount"],
            "store_amount": str((amount - charge).quantize(_CENTS)),
            "processing_charge": str(charge),
        }


def _now() -> str:
    return datetime.now(DHAKA).strftime("%Y-%m-%d %H:%M:%S")


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html")


_GARBAGE = {
    "initiate": lambda: _html(_MAINTENANCE_PAGE),  # a maintenance page, still HTTP 200
    "search": lambda: Response(_TRUNCATED_JSON, mimetype="application/json"),  # cut-off JSON
}


def _page(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}"
        "dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}dt{font-weight:600}"
        "button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}</style></head>"
        f"<body><main><h1>aamarPay sandbox</h1>{content}</main></body></html>"
    )


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

    def settle(self, tran_id: str, *, paid: bool) -> Transaction:
        """Pay or fail a transaction server-side, as if the customer clicked and closed the tab."""
        with self._lock:
            transaction = self._transactions.get(tran_id)
            if transaction is None:
                raise KeyError(tran_id)
            self._complete(transaction, "Successful" if paid else "Failed")
            return transaction

    def transaction(self, tran_id: str) -> Transaction | None:
        with self._lock:
            return self._transactions.get(tran_id)

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
        """A fault's current value; a counted switch is used up by one request."""
        with self._lock:
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

    def _credentials_error(self, values: dict[str, str]) -> str | None:
        if values.get("store_id") != self.store_id:
            return "Invalid Store ID"
        if values.get("signature_key") != self.signature_key:
            return "Invalid Signature Key"
        return None

    # --- initiate ------------------------------------------------------------------------

    def _initiate(self, request: Request) -> Response:
        injected = self._injected("initiate")
        if injected:
            return injected
        body = request.get_json(silent=True)
        fields = {
            str(key): str(value)
            for key, value in (body if isinstance(body, dict) else {}).items()
            if isinstance(value, (str, int, float)) and not isinstance(value, bool)
        }
        refusal = self._credentials_error(fields)
        if refusal:
            return _json(refusal)
        problems = _field_problems(fields)
        if problems:
            return _json(problems)
        kept = {name: fields.get(name, "") for name in REQUIRED_FIELDS + OPTIONAL_FIELDS}
        del kept["store_id"], kept["signature_key"]
        with self._lock:
            if kept["tran_id"] in self._transactions:
                return _json({"tran_id": "Dublicate Transaction ID Provided By You."})
            track = f"AAM{int(time.time())}{next(self._tracks) % 1_000_000:06d}"
            self._transactions[kept["tran_id"]] = Transaction(fields=kept, track=track, created=_now())
            self._by_track[track] = kept["tran_id"]
        base = request.host_url.rstrip("/")
        return _json({"result": "true", "payment_url": f"{base}/paynow.php?track={track}"})

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
        details = (
            f"<dl><dt>Merchant</dt><dd>{html.escape(self.store_id)}</dd>"
            f"<dt>Amount</dt><dd>{html.escape(fields['amount'])} {html.escape(fields['currency'])}</dd>"
            f"<dt>Description</dt><dd>{html.escape(fields['desc'])}</dd>"
            f"<dt>Transaction</dt><dd>{html.escape(transaction.tran_id)}</dd></dl>"
        )
        if transaction.status == "Successful":
            actions = "<p role='status'>This payment is already complete.</p>"
        else:
            actions = (
                f'<form method="post" action="/paynow.php?track={html.escape(transaction.track)}">'
                '<button type="submit" name="action" value="pay">Pay</button>'
                '<button type="submit" name="action" value="fail">Fail</button>'
                '<button type="submit" name="action" value="cancel">Cancel</button></form>'
            )
        return _html(_page(f"Pay {fields['amount']} {fields['currency']}", details + actions))

    def _pay_action(self, request: Request) -> Response:
        transaction = self._tracked(request)
        action = request.form.get("action", "")
        if action not in ("pay", "fail", "cancel"):
            return _html(_page("Bad request", "<p>Unknown action.</p>"), 400)
        with self._lock:
            if transaction.status == "Successful":
                return _html(_page("Already paid", "<p>This payment is already complete.</p>"), 409)
            status = {"pay": "Successful", "fail": "Failed", "cancel": "Cancelled"}[action]
            self._complete(transaction, status)
            if action == "cancel":
                return redirect(transaction.fields["cancel_url"], 303)
            form = self._return_fields(transaction, request.remote_addr or "")
        target = transaction.fields["success_url" if action == "pay" else "fail_url"]
        return _html(_auto_submit(target, form))

    def _complete(self, transaction: Transaction, status: str) -> None:
        """Record an outcome (lock held); a successful payment is final, as at the gateway."""
        if transaction.status != "Successful":
            transaction.status = status
            transaction.pay_time = _now()

    def _return_fields(self, transaction: Transaction, ip_address: str) -> dict[str, str]:
        """The form the browser POSTs back to the merchant: every field the protocol lists."""
        fields = transaction.fields
        paid = transaction.status == "Successful"
        money = transaction.money()
        return {
            "pay_status": transaction.status,
            "status_code": STATUS_CODES[transaction.status][0],
            "mer_txnid": transaction.tran_id,
            "pg_txnid": transaction.track,
            "epw_txnid": transaction.track,
            "store_id": self.store_id,
            "merchant_id": self.store_id,
            "amount": money["amount"],
            "store_amount": money["store_amount"] if paid else "0.00",
            "currency": fields["currency"],
            "currency_merchant": fields["currency"],
            "convertion_rate": "1",
            "pay_time": transaction.pay_time,
            "bank_txn": f"BKH{transaction.track[3:]}" if paid else "",
            "card_type": CARD_TYPE,
            "card_number": "017XXXXXXXX",
            "card_holder": fields["cus_name"],
            "pg_card_bank_name": "bKash",
            "pg_card_bank_country": "Bangladesh",
            "pg_service_charge_bdt": money["processing_charge"] if paid else "0.00",
            "pg_service_charge_usd": "0.00",
            "pg_card_risklevel": "0",
            "pg_error_code_details": "" if paid else "Customer declined the payment.",
            "ip_address": ip_address,
            "cus_name": fields["cus_name"],
            "cus_email": fields["cus_email"],
            "cus_phone": fields["cus_phone"],
            "desc": fields["desc"],
            "success_url": fields["success_url"],
            "fail_url": fields["fail_url"],
            **{name: fields[name] for name in ("opt_a", "opt_b", "opt_c", "opt_d")},
            "reason": "" if paid else "Customer declined the payment.",
        }

    # --- search API ----------------------------------------------------------------------

    def _search(self, request: Request) -> Response:
        injected = self._injected("search")
        if injected:
            return injected
        params = {name: request.args.get(name, "") for name in ("request_id", "store_id", "signature_key", "type")}
        if not all(params.values()):
            refusal: str | None = "Please provide request_id, store_id, signature_key and type."
        else:
            refusal = self._credentials_error(params) or (None if params["type"] == "json" else "Invalid Request Type")
        if refusal:
            return _json(refusal)
        unknown = self._take("search_unknown")
        with self._lock:
            transaction = self._transactions.get(params["request_id"])
            if unknown or transaction is None:
                return _json([] if unknown == "list" else {})
            return _json(self._search_record(transaction))

    def _search_record(self, transaction: Transaction) -> dict[str, str]:
        """The search-API object (lock held): every value a string, overrides applied."""
        fields = transaction.fields
        status = self._faults["search_status"] or transaction.status
        code, title = STATUS_CODES.get(status, ("0", status))
        paid = status == "Successful"
        money = transaction.money()
        amount = self._faults["search_amount"] or money["amount"]
        currency = self._faults["search_currency"] or fields["currency"]
        store = self._faults["search_store"] or self.store_id
        return {
            "pg_txnid": transaction.track,
            "mer_txnid": transaction.tran_id,
            "risk_title": "Risky" if self._faults["search_risk"] else "Safe",
            "risk_level": self._faults["search_risk"] or "0",
            "cus_name": fields["cus_name"],
            "cus_email": fields["cus_email"],
            "cus_phone": fields["cus_phone"],
            "desc": fields["desc"],
            "cus_add1": fields["cus_add1"],
            "cus_add2": fields["cus_add2"],
            "cus_city": fields["cus_city"],
            "cus_state": fields["cus_state"],
            "cus_postcode": fields["cus_postcode"],
            "cus_country": fields["cus_country"],
            "cus_fax": "Not-Available",
            "ship_name": fields["cus_name"],
            "ship_add1": fields["cus_add1"],
            "ship_add2": fields["cus_add2"],
            "ship_city": fields["cus_city"],
            "ship_state": fields["cus_state"],
            "ship_postcode": fields["cus_postcode"],
            "ship_country": fields["cus_country"],
            "merchant_id": store,
            "store_id": store,
            "amount": amount,
            "amount_bdt": amount,
            "pay_status": status,
            "status_code": code,
            "status_title": title,
            "cardnumber": "017XXXXXXXX" if paid else "",
            "approval_code": transaction.track[-6:] if paid else "",
            "payment_processor": "bKash" if paid else "",
            "bank_trxid": f"BKH{transaction.track[3:]}" if paid else "",
            "payment_type": CARD_TYPE if paid else "",
            "error_code": "0000" if paid else "",
            "error_title": "" if paid else title,
            "bin_country": "Bangladesh",
            "bin_issuer": "bKash",
            "bin_cardtype": "MFS",
            "bin_cardcategory": "MFS",
            "date": transaction.created,
            "date_processed": transaction.pay_time,
            "amount_currency": amount,
            "rec_amount": money["store_amount"] if paid else "0.00",
            "processing_ratio": f"{FEE_RATIO * 100:.2f}",
            "processing_charge": money["processing_charge"] if paid else "0.00",
            "ip": "",
            "currency": currency,
            "currency_merchant": currency,
            "convertion_rate": "1",
            **{name: fields[name] or "Not-Available" for name in ("opt_a", "opt_b", "opt_c", "opt_d")},
            "verify_status": "PENDING",
            "call_type": "Json",
            "email_send": "No",
            "doc_recived": "No",
            # Copies the published sample's inconsistency on purpose (see the protocol notes).
            "checkout_status": "Not-Paid-Yet",
        }

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
        body = request.get_json(silent=True) or {}
        outcome = body.get("outcome") if isinstance(body, dict) else None
        if outcome not in ("paid", "failed"):
            return _json({"error": 'send {"tran_id": "...", "outcome": "paid" | "failed"}'}, 400)
        try:
            transaction = self.settle(str(body.get("tran_id", "")), paid=outcome == "paid")
        except KeyError:
            return _json({"error": "unknown tran_id"}, 404)
        return _json({"tran_id": transaction.tran_id, "pay_status": transaction.status})


def _field_problems(fields: dict[str, str]) -> dict[str, str]:
    """Missing or malformed fields, answered in the gateway's object-without-`result` style."""
    problems = {name: f"{name} is required." for name in REQUIRED_FIELDS if not fields.get(name, "").strip()}
    if problems:
        return problems
    if len(fields["tran_id"]) > 32:
        problems["tran_id"] = "Transaction ID must be at most 32 characters."
    if not _AMOUNT.fullmatch(fields["amount"]) or Decimal(fields["amount"]) <= 0:
        problems["amount"] = "Invalid Amount."
    if fields["currency"] not in ("BDT", "USD"):
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
    elif name == "search_unknown":
        valid = value in (True, False, "list") or (type(value) is int and value >= 0)
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

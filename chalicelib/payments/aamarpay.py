"""aamarPay over HTTP: initiate a payment, search a transaction. Knows the wire format, not our tables.

Every quirk of the protocol (docs/money.md, "What the gateway really sends") is parsed here so
callers see three outcomes only: a value, `None` ("the gateway holds no such transaction": its
`Invalid-Data` reply), or a `GatewayFailure` (`GatewayAuthFailed` when it refuses our credentials).

The signature key travels in the search URL's query string, so nothing here ever puts a URL, a
`requests` exception text or a response body that could echo the key into a log line or an
exception message; urllib3's own debug line (which prints the URL) is redacted by a filter.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from chalicelib.core import logs, metrics
from chalicelib.core.validation import is_web_url

if TYPE_CHECKING:
    import requests

log = logs.get("gateway")

MAX_TRAN_ID_LENGTH = 32
# The gateway's own filler for empty values (see `opt_a` in the search reply): sent for customer
# fields aamarPay requires but our users may not have given us.
NOT_AVAILABLE = "Not-Available"
_REASON_LIMIT = 200
_PLAIN_TEXT_LIMIT = 500  # a refusal in plain text is one short line; a longer body is a page
_NOT_FOUND_WORDS = ("not found", "no data", "no record", "no transaction", "does not exist", "not exist")
# How the gateway says "no such transaction" in the search reply's `status` (section 5: two sources).
_NO_SUCH_TRANSACTION = "invalid-data"
# Words of its credentials refusals: plain text at search, `message` or a bare string at initiation.
_CREDENTIAL_WORDS = ("signature key", "store id", "store_id")
# Risk levels that flag nothing: "0" ("Safe"), and the gateway's fillers for a value it did not send.
_SAFE_RISK_LEVELS = frozenset({"", "0", "not available", "not-available"})
# Spellings of an attempt that ended unpaid; "cancelled" was never seen at the gateway but means the same.
_UNPAID_STATES = frozenset({"failed", "cancelled", "canceled", "expired"})


class GatewayFailure(Exception):
    """The gateway refused or answered nonsense; `reason` is short and safe to show and log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GatewayTimeout(GatewayFailure):
    """No answer within the connect or read timeout: the request may or may not have landed."""


class GatewayAuthFailed(GatewayFailure):
    """The gateway refused our store id or signature key: every call will fail until an operator acts."""


@dataclass(frozen=True)
class Customer:
    """The payer as aamarPay wants it; unknown fields get `Not-Available` (country: Bangladesh).

    aamarPay is a Bangladeshi gateway, so its default market stands in for an unknown country.
    Nothing else is invented (no placeholder phone numbers or addresses): a user who wants real
    values on the hosted page sends them with the initiate request.
    """

    name: str
    email: str
    phone: str = NOT_AVAILABLE
    add1: str = NOT_AVAILABLE
    add2: str = NOT_AVAILABLE
    city: str = NOT_AVAILABLE
    state: str = NOT_AVAILABLE
    postcode: str = NOT_AVAILABLE
    country: str = "Bangladesh"

    def fields(self) -> dict[str, str]:
        """The `cus_*` body fields; blank values become the filler (the gateway rejects blanks)."""
        values = {
            "cus_name": self.name,
            "cus_email": self.email,
            "cus_phone": self.phone,
            "cus_add1": self.add1,
            "cus_add2": self.add2,
            "cus_city": self.city,
            "cus_state": self.state,
            "cus_postcode": self.postcode,
            "cus_country": self.country,
        }
        return {key: value.strip() or NOT_AVAILABLE for key, value in values.items()}


@dataclass(frozen=True)
class SearchResult:
    """One search-API record. Only `is_successful` plus matching amount/currency/store/id is proof.

    The gateway answers in taka whatever the merchant charged: `amount`/`currency` are the taka
    figures, `merchant_amount`/`merchant_currency` what the merchant asked for (`amount_original`,
    `currency_merchant`; for a reply without them, the taka figures when the currencies agree).
    """

    mer_txnid: str
    pay_status: str
    status_code: str
    amount: Decimal | None
    currency: str
    store_id: str
    pg_txnid: str
    raw: dict[str, str]
    merchant_amount: Decimal | None = None
    merchant_currency: str = ""
    risk_level: str = ""

    @classmethod
    def from_record(cls, raw: dict[str, str]) -> SearchResult:
        currency = raw.get("currency", "")
        merchant_currency = raw.get("currency_merchant") or currency
        original = parse_amount(raw.get("amount_original", ""))
        amount = parse_amount(raw.get("amount", ""))
        return cls(
            mer_txnid=raw.get("mer_txnid", ""),
            pay_status=raw.get("pay_status", ""),
            status_code=raw.get("status_code", ""),
            amount=amount,
            currency=currency,
            store_id=raw.get("store_id", ""),
            pg_txnid=raw.get("pg_txnid", ""),
            raw=raw,
            merchant_amount=original if original is not None else (amount if merchant_currency == currency else None),
            merchant_currency=merchant_currency,
            risk_level=raw.get("risk_level") or raw.get("pg_card_risklevel") or "",
        )

    @property
    def is_successful(self) -> bool:
        return self.pay_status == "Successful" and self.status_code == "2"

    @property
    def ended_unpaid(self) -> bool:
        """A finished attempt without payment: "Failed" (code 7) or "Expired" (code 3).

        "Incomplete" (code 0) and unknown spellings may still turn into a payment: not ended.
        """
        return self.pay_status.casefold() in _UNPAID_STATES or self.status_code in ("3", "7")

    @property
    def is_risky(self) -> bool:
        """The card's issuer flagged it: any risk level but "0" (a missing or filler value flags nothing)."""
        return self.risk_level.strip().casefold() not in _SAFE_RISK_LEVELS

    @property
    def taka_amount(self) -> Decimal | None:
        """What the customer paid in taka (`amount_bdt`, else `amount` when the reply is in BDT)."""
        bdt = parse_amount(self.raw.get("amount_bdt", ""))
        return bdt if bdt is not None else (self.amount if self.currency == "BDT" else None)

    @property
    def rate(self) -> str:
        """Taka per unit of the merchant's currency, as the gateway reports it (`convertion_rate`, sic)."""
        return self.raw.get("convertion_rate", "")


def parse_amount(value: str) -> Decimal | None:
    """`"100"`, `"100.0"`, `"100.00"` → Decimal; anything else (symbols, separators, NaN) → None."""
    try:
        amount = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        return None
    return amount if amount.is_finite() and amount >= 0 else None


class AamarPayClient:
    """One merchant store on one aamarPay host; a pooled session reused across warm invocations."""

    def __init__(
        self,
        base_url: str,
        store_id: str,
        signature_key: str,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10,
        search_attempts: int = 3,
        retry_backoff: float = 0.25,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.store_id = store_id
        self._signature_key = signature_key
        self.timeout = (connect_timeout, read_timeout)
        self.search_attempts = max(1, search_attempts)
        self.retry_backoff = retry_backoff
        self._http: requests.Session | None = None

    def __repr__(self) -> str:  # the key must not show up in a traceback's locals either
        return f"AamarPayClient(base_url={self.base_url!r}, store_id={self.store_id!r})"

    # --- initiate ------------------------------------------------------------------------

    def initiate(
        self,
        *,
        tran_id: str,
        amount: Decimal,
        currency: str,
        desc: str,
        customer: Customer,
        success_url: str,
        fail_url: str,
        cancel_url: str,
    ) -> str:
        """Create the gateway transaction and return the hosted page's URL. Never retried:
        a timeout may still have created it (the search API tells later)."""
        if not 0 < len(tran_id) <= MAX_TRAN_ID_LENGTH:
            raise ValueError(f"tran_id must be 1 to {MAX_TRAN_ID_LENGTH} characters")
        if not amount.is_finite() or amount <= 0:
            raise ValueError("amount must be positive")
        body = {
            "store_id": self.store_id,
            "signature_key": self._signature_key,
            "tran_id": tran_id,
            "amount": f"{amount.quantize(Decimal('0.01'))}",
            "currency": currency,
            "desc": desc,
            **customer.fields(),
            "success_url": success_url,
            "fail_url": fail_url,
            "cancel_url": cancel_url,
            "type": "json",
        }
        try:
            with _measured("initiate"):
                payment_url = self._payment_url(_decode(self._send("POST", "/jsonpost.php", json=body)))
        except GatewayFailure as failure:
            logs.event(log, "aamarpay initiate failed", logging.WARNING, tran_id=tran_id, reason=failure.reason)
            raise
        logs.event(log, "aamarpay initiate ok", tran_id=tran_id)
        return payment_url

    def _payment_url(self, data: Any) -> str:
        """Success is `result` "true" (the string; a JSON true is taken too) plus an http(s) URL."""
        if isinstance(data, str):
            raise self._refusal(data)
        if not isinstance(data, dict):
            raise GatewayFailure("gateway answered an unexpected JSON value")
        if str(data.get("result", "")).lower() != "true":
            details = "; ".join(
                _text(value) if key == "message" else f"{key}: {_text(value)}"
                for key, value in data.items()
                if key != "result"
            )
            raise self._refusal(details or "no reason given")
        url = data.get("payment_url")
        if not isinstance(url, str) or not is_web_url(url):
            raise GatewayFailure("gateway answered without a usable payment_url")
        return url

    # --- search --------------------------------------------------------------------------

    def search(self, tran_id: str) -> SearchResult | None:
        """The gateway's record of `tran_id` (our `mer_txnid`), or None when it has none.

        Retried on timeouts, unreachable host and 5xx (an idempotent GET), with a short backoff.
        """
        params = {
            "request_id": tran_id,
            "store_id": self.store_id,
            "signature_key": self._signature_key,
            "type": "json",
        }
        try:
            with _measured("search"):
                result = self._parse_search(tran_id, _decode(self._search_with_retries(params)))
        except GatewayFailure as failure:
            logs.event(log, "aamarpay search failed", logging.WARNING, tran_id=tran_id, reason=failure.reason)
            raise
        outcome = "no such transaction" if result is None else f"{result.pay_status}/{result.status_code}"
        logs.event(log, "aamarpay search", tran_id=tran_id, outcome=outcome)
        return result

    def _search_with_retries(self, params: dict[str, str]) -> requests.Response:
        attempt = 1
        while True:
            try:
                reply = self._send("GET", "/api/v1/trxcheck/request.php", params=params)
                if reply.status_code < 500 or attempt >= self.search_attempts:
                    return reply
            except GatewayFailure:
                if attempt >= self.search_attempts:
                    raise
            time.sleep(self.retry_backoff * 2 ** (attempt - 1))
            attempt += 1

    def _parse_search(self, tran_id: str, data: Any) -> SearchResult | None:
        """`Invalid-Data` (and `{}`, `[]`, `""`, null, "not found" words) → None; one record → a result."""
        if isinstance(data, list):
            records = [item for item in data if item]
            if len(records) > 1:
                raise GatewayFailure(f"gateway answered {len(records)} records for one transaction")
            data = records[0] if records else None
        if not data:
            return None
        if isinstance(data, str):
            if any(words in data.lower() for words in _NOT_FOUND_WORDS):
                return None
            raise self._refusal(data)
        if not isinstance(data, dict):
            raise GatewayFailure("gateway answered an unexpected JSON value")
        raw = {str(key): _text(value) for key, value in data.items()}
        if "pay_status" not in raw and "mer_txnid" not in raw:
            if raw.get("status", "").casefold() == _NO_SUCH_TRANSACTION and raw.get("request_id", tran_id) == tran_id:
                return None
            details = "; ".join(f"{key}: {value}" for key, value in raw.items())
            raise GatewayFailure(self._reason(f"gateway answered no transaction record ({details})"))
        return SearchResult.from_record(raw)

    def _refusal(self, message: str) -> GatewayFailure:
        """The gateway's refusal; a credentials refusal is its own kind (an operator must act)."""
        reason = self._reason(f"gateway refused: {message}")
        if any(words in message.casefold() for words in _CREDENTIAL_WORDS):
            return GatewayAuthFailed(reason)
        return GatewayFailure(reason)

    # --- transport -----------------------------------------------------------------------

    def _session(self) -> requests.Session:
        if self._http is None:
            import requests

            _redact_urllib3_debug_log()
            self._http = requests.Session()
        return self._http

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP exchange of any status; transport errors become gateway errors with no URL in them.

        `from None` drops the `requests` exception (its text carries the URL, hence the key).
        Redirects are not followed: the key must never be re-sent to a host we did not choose.
        """
        import requests

        try:
            reply = self._session().request(
                method, self.base_url + path, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.ConnectTimeout:
            raise GatewayTimeout("gateway did not accept the connection in time") from None
        except requests.Timeout:
            raise GatewayTimeout("gateway did not answer in time") from None
        except requests.RequestException as error:
            raise GatewayFailure(f"gateway unreachable ({type(error).__name__})") from None
        return reply

    def _reason(self, text: str) -> str:
        """A gateway-provided message, shortened and with the key cut should it ever be echoed."""
        text = " ".join(text.split())
        if self._signature_key:
            text = text.replace(self._signature_key, "***")
        return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"


@contextmanager
def _measured(call: str) -> Iterator[None]:
    """`GatewayLatency` of one call, answered or not; `GatewayErrors` when it failed, and
    `GatewayAuthFailed` with its own log event when the gateway refused our credentials."""
    started = time.perf_counter()
    try:
        yield
    except GatewayFailure as failure:
        metrics.count("GatewayErrors", call=call)
        if isinstance(failure, GatewayAuthFailed):
            metrics.count("GatewayAuthFailed", call=call)
            logs.event(log, "aamarpay credentials refused", logging.ERROR, call=call, reason=failure.reason)
        raise
    finally:
        metrics.timing("GatewayLatency", (time.perf_counter() - started) * 1000, call=call)


def _decode(reply: requests.Response) -> Any:
    """The value of a 200 reply: JSON, or the text of a short plain-text answer (the gateway's
    refusals come so); 5xx, HTML, broken JSON and other garbage become `GatewayFailure`."""
    if reply.status_code != 200:
        raise GatewayFailure(f"gateway answered HTTP {reply.status_code}")
    kind = reply.headers.get("content-type", "unknown").split(";")[0].strip() or "unknown"
    try:
        text = reply.content.decode("utf-8-sig")
        return json.loads(text)
    except UnicodeDecodeError:
        pass
    except json.JSONDecodeError:
        if _is_plain_text(text, kind):
            return text.strip()
    raise GatewayFailure(f"gateway answered non-JSON ({kind})") from None


def _is_plain_text(text: str, content_type: str) -> bool:
    """One short line of words served as text (the gateway labels everything `text/html`): not a
    page, not JSON cut short."""
    words = text.strip()
    return (
        content_type.startswith("text/")
        and 0 < len(words) <= _PLAIN_TEXT_LIMIT
        and "<" not in words
        and words[0] not in '{["'
    )


def _text(value: Any) -> str:
    """The protocol says every value is a string; tolerate numbers and nulls without guessing more."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


class _RedactUrlFilter(logging.Filter):
    """urllib3 logs `GET /path?query` at DEBUG: format it, then cut `signature_key=…`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = logs.redact(record.getMessage())
        record.args = None
        return True


@functools.cache
def _redact_urllib3_debug_log() -> None:
    logging.getLogger("urllib3.connectionpool").addFilter(_RedactUrlFilter())


@functools.lru_cache(maxsize=1)
def client() -> AamarPayClient:
    """The configured client, one per container (its connection pool survives warm invocations)."""
    from chalicelib.core.config import app_secrets, settings

    secrets = app_secrets()
    # Budgeted for API Gateway's 29 s limit: a search is at most 2 x (3.05 + 8) s + backoff.
    return AamarPayClient(
        settings().aamarpay_base_url,
        secrets.aamarpay_store_id,
        secrets.aamarpay_signature_key,
        read_timeout=8,
        search_attempts=2,
    )

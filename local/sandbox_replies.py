"""What the emulated aamarPay remembers of a transaction and the shapes it answers with.

The shapes are those of the real gateway (shared/aamarpay-protocol.md, section 5, and the
corpus in tests/aamarpay_replies.py, which a test holds these against): the search record with
JSON `null` for what the merchant never sent, `amount_original`, `store_amount`, `error_code` "No"
on a success; the 2021 record (every value a string) behind a fault switch; the 2025 return form
with "Not Available" fillers and no `desc`. A non-BDT payment is answered in taka at a fixed rate,
the merchant's own figures kept in `currency_merchant` / `amount_original` / `other_currency`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

# Taka per dollar: fixed so tests can compute what the gateway reports (the corpus's USD_RATE).
USD_RATE = Decimal("122.50")
RATES = {"BDT": Decimal(1), "USD": USD_RATE}
FEE_RATIO = Decimal("0.021")  # the protocol's example: store_amount "9.79" of "10.00"
# pay_status → status_code as the docs number them; "Incomplete" is an initiated, unpaid transaction.
STATUS_CODES = {"Incomplete": "0", "Successful": "2", "Expired": "3", "Failed": "7"}
RISK_TITLES = {"0": "Safe", "1": "High"}
CARD_TYPE = "bKash-bKash"
CARD_NUMBER = "017XXXXXXXX"
NOT_AVAILABLE_SEARCH = "Not-Available"  # the search API's filler (opt_*)
NOT_AVAILABLE_RETURN = "Not Available"  # the return form's filler (no hyphen, as captured in 2025)
DECLINED = "Customer declined the payment."
ADDRESS_FIELDS = ("cus_add1", "cus_add2", "cus_city", "cus_state", "cus_postcode", "cus_country")
OPT_FIELDS = ("opt_a", "opt_b", "opt_c", "opt_d")
# What the 2021 record lacked; `search_legacy` drops them again.
NEWER_SEARCH_FIELDS = ("amount_original", "store_amount", "amount_currency", "other_currency")
_CENTS = Decimal("0.01")


@dataclass
class Transaction:
    """One initiated payment as the gateway remembers it."""

    fields: dict[str, str]  # the initiate body as sent (fields not sent are absent), credentials excluded
    track: str
    created: str
    status: str = "Incomplete"
    pay_time: str = ""
    risk_level: str = "0"
    ip: str = ""

    @property
    def tran_id(self) -> str:
        return self.fields["tran_id"]

    @property
    def paid(self) -> bool:
        return self.status == "Successful"


@dataclass(frozen=True)
class Money:
    """The merchant's figures and the taka ones the gateway reports beside them."""

    original: str  # the merchant's amount, as it sent it
    currency: str  # the merchant's currency
    rate: Decimal
    taka: str
    charge: str
    store_amount: str

    @classmethod
    def of(cls, amount: str, currency: str) -> Money:
        """`amount` in `currency` at the fixed rate; a non-number (a fault override) is echoed as is."""
        rate = RATES.get(currency, Decimal(1))
        try:
            value = Decimal(amount)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            return cls(amount, currency, rate, amount, "0.00", amount)
        taka = (value * rate).quantize(_CENTS, ROUND_HALF_UP)
        charge = (taka * FEE_RATIO).quantize(_CENTS, ROUND_HALF_UP)
        # Taka are reported as the merchant sent them, converted ones at two decimals.
        return cls(amount, currency, rate, amount if rate == 1 else str(taka), str(charge), str(taka - charge))

    @property
    def rate_text(self) -> str:
        return "1" if self.rate == 1 else str(self.rate)

    @property
    def foreign(self) -> bool:
        return self.currency != "BDT"


def search_record(
    transaction: Transaction, store_id: str, *, status: str, money: Money, risk_level: str, legacy: bool = False
) -> dict[str, Any]:
    """The search-API object, keys in the captured order; `legacy` gives the 2021 all-strings shape."""
    fields = transaction.fields
    paid = status == "Successful"
    taka = money.taka
    record: dict[str, Any] = {
        "pg_txnid": transaction.track if paid else "",
        "mer_txnid": transaction.tran_id,
        "risk_title": RISK_TITLES.get(risk_level, "High"),
        "risk_level": risk_level,
        "cus_name": fields["cus_name"],
        "cus_email": fields["cus_email"],
        "cus_phone": fields["cus_phone"],
        **{name: fields.get(name) or None for name in ADDRESS_FIELDS},
        "cus_fax": None,
        **{f"ship_{part}": None for part in ("name", "add1", "add2", "city", "state", "postcode", "country")},
        "desc": fields["desc"],
        "merchant_id": store_id,
        "store_id": store_id,
        "amount": taka,
        "amount_bdt": taka,
        "amount_original": money.original,
        "store_amount": money.store_amount,
        "pay_status": status,
        "status_code": STATUS_CODES.get(status, "0"),
        "status_title": f"{status} Transaction",
        "cardnumber": CARD_NUMBER if paid else "",
        "approval_code": transaction.track[-6:] if paid else "",
        "payment_processor": "bKash",
        "bank_trxid": f"BKH{transaction.track[3:]}" if paid else "",
        "payment_type": CARD_TYPE,
        "error_code": "No" if paid else "Yes",
        "error_title": "" if paid else f"Transaction {status}",
        **{name: fields.get(name) or NOT_AVAILABLE_SEARCH for name in OPT_FIELDS},
        "date": transaction.created,
        "date_processed": transaction.pay_time,
        "amount_currency": money.original,
        "rec_amount": money.store_amount,
        "processing_ratio": f"{FEE_RATIO * 100:.2f}",
        "processing_charge": money.charge,
        "ip": transaction.ip,
        "currency": "BDT",
        "currency_merchant": money.currency,
        "convertion_rate": money.rate_text,
        "other_currency": money.original if money.foreign else None,
        "success_url": fields["success_url"],
        "fail_url": fields["fail_url"],
        "cancel_url": fields["cancel_url"],
        "verify_status": "PENDING",
        "call_type": "Json",
        "email_send": "Yes",
        "doc_recived": "No",
        # Copies the captured inconsistency on purpose (see the protocol notes).
        "checkout_status": "Not-Paid-Yet",
    }
    if legacy:
        record = {key: "" if value is None else value for key, value in record.items()}
        for key in NEWER_SEARCH_FIELDS:
            del record[key]
        record["error_code"] = "0000" if paid else ""
    return record


def invalid_data(request_id: str, store_id: str) -> dict[str, str]:
    """The search answer for a `request_id` the gateway holds no transaction for."""
    return {"request_id": request_id, "store_id": store_id, "status": "Invalid-Data"}


def return_form(transaction: Transaction, store_id: str, ip_address: str) -> dict[str, str]:
    """The form the browser POSTs to success_url / fail_url, as the 2025 capture has it."""
    fields = transaction.fields
    paid = transaction.paid
    money = Money.of(fields["amount"], fields["currency"])
    declined = NOT_AVAILABLE_RETURN if paid else DECLINED
    return {
        "pg_service_charge_bdt": money.charge if paid else "0.00",
        "pg_service_charge_usd": NOT_AVAILABLE_RETURN,
        "pg_card_bank_name": NOT_AVAILABLE_RETURN,
        "pg_card_bank_country": NOT_AVAILABLE_RETURN,
        "card_number": CARD_NUMBER,
        "card_holder": NOT_AVAILABLE_RETURN,
        "cus_phone": fields["cus_phone"],
        "pay_status": transaction.status,
        "status_code": STATUS_CODES[transaction.status],
        "pg_txnid": transaction.track,
        "mer_txnid": transaction.tran_id,
        "store_id": store_id,
        "merchant_id": store_id,
        "currency": "BDT",
        "store_amount": money.store_amount if paid else "0.00",
        "pay_time": transaction.pay_time,
        "amount": money.taka,
        "amount_original": money.original,
        "amount_currency": money.original,
        "other_currency": money.original if money.foreign else NOT_AVAILABLE_RETURN,
        "gateway_fee": "",
        "bank_txn": f"BKH{transaction.track[3:]}" if paid else "",
        "card_type": CARD_TYPE,
        "reason": declined,
        "pg_card_risklevel": transaction.risk_level,
        "pg_error_code_details": declined,
        **{name: fields.get(name) or NOT_AVAILABLE_SEARCH for name in OPT_FIELDS},
        "currency_merchant": money.currency,
        "convertion_rate": money.rate_text,
        "ip_address": ip_address,
        "cus_name": fields["cus_name"],
        "cus_email": fields["cus_email"],
        "success_url": fields["success_url"],
        "fail_url": fields["fail_url"],
        "epw_txnid": transaction.track,
    }

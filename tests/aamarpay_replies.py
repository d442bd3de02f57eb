"""The corpus: every reply shape aamarPay really sends (shared/aamarpay-protocol.md, section 5).

Each shape is built as the gateway builds it (the same keys, `null` where it sends JSON null, every
other value a string, JSON served as `text/html`) for one transaction of ours, so the client, the
settlement and the sandbox tests all run through the same real shapes. A change that stops
understanding one of them fails those tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SANDBOX_PAGE = "https://sandbox.aamarpay.com/paynow.php?track=AAM1604476085103491"
USD_RATE = "122.50"  # taka per dollar in the USD shapes


@dataclass(frozen=True)
class Reply:
    """One HTTP answer of the gateway: what it is, where the shape was seen, and its bytes."""

    name: str
    meaning: str
    body: str
    content_type: str = "text/html; charset=UTF-8"  # the gateway labels its JSON as HTML
    status: int = 200

    def json(self) -> Any:
        return json.loads(self.body)


# --- search (api/v1/trxcheck/request.php) --------------------------------------------------


def search_record(
    tran_id: str,
    store_id: str,
    *,
    amount: str = "100.00",
    currency: str = "BDT",
    pay_status: str = "Successful",
    status_code: str = "2",
    risk_level: str = "0",
) -> dict[str, Any]:
    """A search reply as the 2025 capture has it: nulls, `amount_original`, `error_code` "No".

    For a currency other than BDT the gateway answers in taka (`currency` "BDT", `amount` at
    `USD_RATE`) and keeps the merchant's figures in `currency_merchant` and `amount_original`.
    """
    taka = amount if currency == "BDT" else f"{float(amount) * float(USD_RATE):.2f}"
    rate = "1" if currency == "BDT" else USD_RATE
    successful = pay_status == "Successful"
    return {
        "pg_txnid": "AAM1733121016104521" if successful else "",
        "mer_txnid": tran_id,
        "risk_title": "Safe" if risk_level == "0" else "High",
        "risk_level": risk_level,
        "cus_name": "reader",
        "cus_email": "reader@example.com",
        "cus_phone": "Not-Available",
        "cus_add1": "Not-Available",
        "cus_add2": None,
        "cus_city": "Not-Available",
        "cus_state": None,
        "cus_postcode": None,
        "cus_country": "Bangladesh",
        "cus_fax": None,
        "ship_name": None,
        "ship_add1": None,
        "ship_add2": None,
        "ship_city": None,
        "ship_state": None,
        "ship_postcode": None,
        "ship_country": None,
        "desc": "Upload access",
        "merchant_id": store_id,
        "store_id": store_id,
        "amount": taka,
        "amount_bdt": taka,
        "amount_original": amount,
        "store_amount": f"{float(taka) * 0.977:.2f}",
        "pay_status": pay_status,
        "status_code": status_code,
        "status_title": f"{pay_status} Transaction",
        "cardnumber": "01XXXXXXX71" if successful else "",
        "approval_code": "",
        "payment_processor": "bKash",
        "bank_trxid": "BAK00QZ31D" if successful else "",
        "payment_type": "bKash-bKash",
        "error_code": "No" if successful else "Yes",
        "error_title": "" if successful else "Transaction Failed",
        "opt_a": "Not-Available",
        "opt_b": "Not-Available",
        "opt_c": "Not-Available",
        "opt_d": "Not-Available",
        "date": "2026-12-07 10:15:04",
        "date_processed": "2026-12-07 10:16:11",
        "amount_currency": amount,
        "rec_amount": f"{float(taka) * 0.977:.2f}",
        "processing_ratio": "2.30",
        "processing_charge": f"{float(taka) * 0.023:.2f}",
        "ip": "103.120.202.14",
        "currency": "BDT",
        "currency_merchant": currency,
        "convertion_rate": rate,
        "other_currency": amount if currency != "BDT" else None,
        "success_url": "https://merchant.example/api/payment/success/",
        "fail_url": "https://merchant.example/api/payment/fail/",
        "cancel_url": "https://merchant.example/api/payment/cancel/",
        "verify_status": "PENDING",
        "call_type": "Json",
        "email_send": "Yes",
        "doc_recived": "No",
        "checkout_status": "Not-Paid-Yet",
    }


def search_replies(tran_id: str, store_id: str, *, amount: str = "100.00", currency: str = "BDT") -> list[Reply]:
    """Every search reply shape for one of our transactions, its money as given."""

    def record(name: str, meaning: str, **changes: Any) -> Reply:
        return Reply(
            name, meaning, json.dumps(search_record(tran_id, store_id, amount=amount, currency=currency, **changes))
        )

    legacy = {
        key: "" if value is None else value
        for key, value in search_record(tran_id, store_id, amount=amount, currency=currency).items()
        if key not in ("amount_original", "store_amount", "amount_currency", "other_currency")
    }
    legacy["error_code"] = "0000"
    return [
        record("success", "paid"),
        Reply("success_2021", "paid (every value a string, no amount_original)", json.dumps(legacy)),
        record("risky", "paid, held for review", risk_level="1"),
        record("failed", "ended unpaid", pay_status="Failed", status_code="7"),
        record("expired", "ended unpaid", pay_status="Expired", status_code="3"),
        record("incomplete", "not paid yet", pay_status="Incomplete", status_code="0"),
        Reply(
            "invalid_data",
            "no such transaction",
            json.dumps({"request_id": tran_id, "store_id": store_id, "status": "Invalid-Data"}),
        ),
        Reply("bad_credentials", "wrong store or key", "Store_id & signature key not matched"),
    ]


def search_reply(name: str, tran_id: str, store_id: str, **money: str) -> Reply:
    return next(reply for reply in search_replies(tran_id, store_id, **money) if reply.name == name)


# --- initiation (jsonpost.php) -------------------------------------------------------------

INITIATION_REPLIES = [
    Reply("ok", "hosted page", json.dumps({"result": "true", "payment_url": SANDBOX_PAGE})),
    Reply("bad_key", "refused", json.dumps({"result": False, "message": "Invalid Signature Key"})),
    Reply("bad_store_legacy", "refused", json.dumps("Invalid Store ID")),
    Reply("duplicate", "refused", json.dumps({"tran_id": "Dublicate Transaction ID Provided By You."})),
    Reply("invalid_json", "refused", "invalid json"),
]


# --- the browser's return POST (success_url / fail_url) -------------------------------------


def return_form(tran_id: str, store_id: str, *, paid: bool = True, amount: str = "100.00") -> dict[str, str]:
    """The form a 2025 return carries: `amount_original` and friends, "Not Available" fillers, no `desc`."""
    return {
        "pg_service_charge_bdt": "2.30",
        "pg_service_charge_usd": "Not Available",
        "pg_card_bank_name": "Not Available",
        "pg_card_bank_country": "Not Available",
        "card_number": "01XXXXXXX71",
        "card_holder": "Not Available",
        "cus_phone": "Not-Available",
        "pay_status": "Successful" if paid else "Failed",
        "status_code": "2" if paid else "7",
        "pg_txnid": "AAM1733121016104521",
        "mer_txnid": tran_id,
        "store_id": store_id,
        "merchant_id": store_id,
        "currency": "BDT",
        "store_amount": "97.70",
        "pay_time": "2026-12-07 10:16:11",
        "amount": amount,
        "amount_original": amount,
        "amount_currency": amount,
        "other_currency": "Not Available",
        "gateway_fee": "",
        "bank_txn": "BAK00QZ31D",
        "card_type": "bKash-bKash",
        "reason": "Not Available",
        "pg_card_risklevel": "0",
        "pg_error_code_details": "Not Available",
        "opt_a": "Not-Available",
        "opt_b": "Not-Available",
        "opt_c": "Not-Available",
        "opt_d": "Not-Available",
        "currency_merchant": "BDT",
        "convertion_rate": "1",
        "ip_address": "103.120.202.14",
        "cus_name": "reader",
        "cus_email": "reader@example.com",
        "success_url": "https://merchant.example/api/payment/success/",
        "fail_url": "https://merchant.example/api/payment/fail/",
        "epw_txnid": "AAM1733121016104521",
    }

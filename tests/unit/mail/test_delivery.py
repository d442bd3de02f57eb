"""The mail worker sends each email once: duplicate deliveries, failing senders, parallel runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.core import clock
from chalicelib.core.models import MailLog, Payment, User
from chalicelib.mail import delivery, jobs, messages, senders
from chalicelib.mail.delivery import Outgoing
from chalicelib.mail.messages import Letter
from chalicelib.payments import settlement
from tests import mailbox, records
from tests.unit.conftest import Api


@pytest.fixture(autouse=True)
def outbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    yield tmp_path / "outbox"


def _letter() -> Letter:
    return Letter("alice@example.com", "changed", "en", {"username": "alice", "time": "now"})


def test_a_duplicated_sqs_delivery_sends_once(api: Api) -> None:
    api.register("alice")
    mailbox.delete(mailbox.queued())  # the verification email (test_verification.py)
    assert api.call("POST", "/api/password/forgot/", {"email": "alice@example.com"}).status_code == 202
    [message] = mailbox.queued()
    mailbox.run_worker(api.client, [message, message, message])  # SQS redelivers the same message
    assert len(mailbox.outbox()) == 1


def test_a_failing_sender_loses_nothing_the_retry_sends_it(
    aws_resources: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    original = senders._write_outbox

    def flaky(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "SendEmail")
        original(*args)

    monkeypatch.setattr(senders, "_write_outbox", flaky)
    outgoing = Outgoing("job-1", _letter)
    with pytest.raises(ClientError):  # propagates: the message stays on the queue
        delivery.deliver(outgoing)
    assert mailbox.outbox() == []
    assert delivery.deliver(outgoing) is True  # the redelivery
    assert delivery.deliver(outgoing) is False
    assert len(mailbox.outbox()) == 1 and calls["n"] == 2


def test_ses_refusing_fails_the_message_each_time_and_leaves_no_claim(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the SES backend and an unverified sender, moto's SES refuses: the function names the
    message in its partial batch response every time (SQS retries it, then the DLQ keeps it)
    and no claim is left behind."""
    from chalicelib.core.config import settings

    monkeypatch.setenv("MAIL_BACKEND", "ses")
    settings.cache_clear()
    try:
        user = api.register("alice").data["user"]
        mailbox.delete(mailbox.queued())  # the verification email
        jobs.put("password_changed", job_id="changed-1", user_id=user["id"])
        [message] = mailbox.queued()
        for _ in range(2):
            answer = mailbox.invoke(api.client, message)
            assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
        with pytest.raises(MailLog.DoesNotExist):
            MailLog.get("changed-1")  # the claim was released: the retry may send
    finally:
        settings.cache_clear()


def test_a_live_claim_of_another_run_makes_the_message_wait(aws_resources: dict[str, Any]) -> None:
    future = clock.iso(clock.now().replace(year=clock.now().year + 1))
    MailLog("job-2", state=delivery.SENDING, lease_until=future, expires_at=clock.now()).save()
    with pytest.raises(delivery.Busy):
        delivery.deliver(Outgoing("job-2", _letter))
    assert mailbox.outbox() == []


def test_a_lapsed_claim_of_a_crashed_run_is_taken_over(aws_resources: dict[str, Any]) -> None:
    MailLog("job-3", state=delivery.SENDING, lease_until="2000-01-01T00:00:00Z", expires_at=clock.now()).save()
    assert delivery.deliver(Outgoing("job-3", _letter)) is True
    assert MailLog.get("job-3").state == delivery.SENT


def test_user_values_are_escaped_in_html() -> None:
    letter = Letter("a@b.c", "changed", "bn", {"username": "<script>x</script>", "time": "t"})
    message = messages.render(letter, "no-reply@example.com")
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "<script>" not in str(html.get_content())
    assert "&lt;script&gt;" in str(html.get_content())
    assert str(message["Subject"]) == "আপনার পাসওয়ার্ড পরিবর্তন করা হয়েছে"


def _initiated_payment(user_id: str) -> Payment:
    payment = records.payment(user_id, "initiated", gateway_transaction_id="PG123")
    payment.save()
    User(user_id).update(actions=[User.open_payments.set(1)])
    return payment


def test_one_receipt_however_many_paths_settle_the_payment(api: Api, atomic_dynamodb: None) -> None:
    user = api.register("alice").data["user"]
    mailbox.delete(mailbox.queued())  # the verification email
    payment = _initiated_payment(user["id"])
    winners: list[bool] = []

    def settle() -> None:
        _, moved = settlement.move(Payment.get(payment.transaction_id), settlement.Status.SUCCESS, via="check")
        winners.append(moved)

    threads = [threading.Thread(target=settle) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert winners.count(True) == 1
    queued = mailbox.queued()
    assert len(queued) == 1, [m["Body"] for m in queued]  # only the winning transaction queued a receipt
    jobs.put("receipt", job_id="again", transaction_id=payment.transaction_id)  # a stray second job
    mailbox.run_worker(api.client, [*queued, *mailbox.queued(), *queued])
    receipts = [m for m in mailbox.outbox() if "Receipt" in str(m["Subject"])]
    assert len(receipts) == 1
    text = mailbox.text_of(receipts[0])
    assert "100.00 BDT" in text and payment.transaction_id in text and "PG123" in text


def test_every_template_is_a_declared_mail_metric_kind() -> None:
    """MailSent counts per template: a new template without its dimension value would fail the send."""
    from chalicelib.core import metrics

    assert set(messages.TEMPLATES) == metrics.DIMENSION_VALUES["kind"]

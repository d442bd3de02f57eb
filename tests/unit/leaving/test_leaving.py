"""GET /api/me/export/ and DELETE /api/me/: everything handed over, then the account ends."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from chalicelib.core import aws, clock, counters
from chalicelib.core.config import settings
from chalicelib.core.db import transact_write
from chalicelib.core.models import Activity, Claim, File, Payment, User
from chalicelib.files import purge, worker
from chalicelib.leaving import deletion, export
from chalicelib.payments import settlement
from chalicelib.staff import admin
from local import recount
from local.sandbox import Sandbox
from tests import records
from tests.aamarpay_browser import press
from tests.unit.conftest import Api

PASSWORD = "correct horse"


def _me(api: Api, token: str) -> dict[str, Any]:
    return api.call("GET", "/api/me/", token=token).data


def _pay(api: Api, token: str) -> str:
    """A payment through the sandbox, settled by its return; the transaction id."""
    started = api.call("POST", "/api/initiate-payment/", {}, token).data
    hop = press(started["payment_url"], "pay")
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    response = api.client.http.post(urlsplit(hop.url).path, headers=headers, body=urlencode(hop.form).encode())
    assert json.loads(response.body)["status"] == "success"
    return str(started["transaction_id"])


def _upload(api: Api, token: str, name: str, body: bytes | None = b"one two three") -> File:
    """An upload request; with a body, the bytes stored and counted by the worker."""
    answer = api.call("POST", "/api/upload/", {"filename": name, "size": 13}, token)
    assert answer.status_code == 201, answer.data
    item = File.get(answer.data["file"]["id"])
    if body is not None:
        aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=body)
        worker.process_object(item.object_key, worker.Message([item.object_key], receive_count=1, ticket=None))
    return File.get(item.id)


def _failed_payment(user_id: str) -> Payment:
    """A payment that expired unpaid (no longer re-checked), written directly with its counts:
    many are cheap."""
    payment = records.payment(user_id, "expired")
    with transact_write() as transaction:
        transaction.save(payment)
        counters.add(transaction, counters.moved("payments", None, "expired"), day=payment.day)
    return payment


def _versions(prefix: str) -> list[dict[str, Any]]:
    listing = aws.client("s3").list_object_versions(Bucket=settings().upload_bucket, Prefix=prefix)
    return listing.get("Versions", []) + listing.get("DeleteMarkers", [])


def _delete(api: Api, token: str, password: str | None = PASSWORD) -> Any:
    return api.call("DELETE", "/api/me/", {} if password is None else {"password": password}, token)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two records a Query page: every list below spans several pages."""
    for module in (export, deletion, purge):
        monkeypatch.setattr(module, "PAGE_SIZE", 2)


# --- export --------------------------------------------------------------------------------


def test_export_is_complete_across_pages_newest_first_and_holds_nothing_of_another_user(
    api: Api, gateway: Sandbox, small_pages: None
) -> None:
    token = api.signed_up("alice")
    alice = _me(api, token)["user"]["id"]
    expired = [_failed_payment(alice) for _ in range(4)]
    paid = _pay(api, token)
    files = [_upload(api, token, f"note{n}.txt") for n in range(3)]
    assert api.call("DELETE", f"/api/files/{files[0].id}/", None, token).status_code == 204
    other = api.signed_up("bob")
    _pay(api, other)
    _upload(api, other, "bobs.txt")

    response = api.call("GET", "/api/me/export/", None, token)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="my-data-')
    data = response.data
    assert set(data) == {"user", "payments", "files", "activity"}
    assert data["user"]["username"] == "alice" and data["user"]["email"] == "alice@example.com"
    assert data["user"]["usage"] == {"files": 2, "bytes": 26, "max_files": 200, "max_bytes": 104857600}
    assert [p["transaction_id"] for p in data["payments"]] == [paid, *[p.transaction_id for p in reversed(expired)]]
    assert data["payments"][0] == api.call("GET", "/api/transactions/", None, token).data["items"][0]
    assert [f["id"] for f in data["files"]] == [f.id for f in reversed(files)]  # the deleted one too
    assert data["files"][-1]["status"] == "deleted"
    assert data["files"][0] == api.call("GET", "/api/files/", None, token).data["items"][0]
    own_activity = list(Activity.query(alice, scan_index_forward=False))
    assert [a["id"] for a in data["activity"]] == [a.id for a in own_activity] and len(own_activity) > 2
    assert data["activity"][:2] == api.call("GET", "/api/activity/?limit=2", None, token).data["items"]
    assert "bob" not in response.body.decode() and "bobs.txt" not in response.body.decode()


def test_an_export_past_its_bound_answers_413_not_a_response_lambda_refuses(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = api.signed_up("alice")
    assert api.call("GET", "/api/me/export/", None, token).status_code == 200
    monkeypatch.setattr(export, "MAX_EXPORT_BYTES", 300)
    response = api.call("GET", "/api/me/export/", None, token)
    assert (response.status_code, response.data["error"]["code"]) == (413, "data_too_large")
    assert api.call("GET", "/api/me/export/").status_code == 401


# --- deletion: refusals that change nothing ------------------------------------------------


def _snapshot(user_id: str) -> tuple[Any, ...]:
    user = User.get(user_id, consistent_read=True)
    files = sorted((f.id, f.status, f.filename) for f in File.by_user.query(user_id))
    prefix = purge.user_prefix(user_id)
    return user.token_epoch, user.deleting, files, len(_versions(prefix)), len(list(Activity.query(user_id)))


def test_a_wrong_or_missing_password_changes_nothing(api: Api) -> None:
    token = api.signed_up("alice")
    alice = _me(api, token)["user"]["id"]
    before = _snapshot(alice)
    wrong = _delete(api, token, "not my password")
    assert (wrong.status_code, wrong.data["error"]["code"]) == (401, "invalid_credentials")
    missing = _delete(api, token, None)
    assert (missing.status_code, missing.data["error"]["code"]) == (400, "validation_error")
    assert _snapshot(alice)[:4] == before[:4]  # (the wrong guess is logged: one more entry)
    assert _me(api, token)["user"]["username"] == "alice"


def test_a_processing_file_refuses_with_409_and_nothing_changes(api: Api, gateway: Sandbox) -> None:
    token = api.signed_up("alice")
    alice = _me(api, token)["user"]["id"]
    _pay(api, token)
    done = _upload(api, token, "done.txt")
    busy = _upload(api, token, "busy.txt", body=None)
    busy.update(actions=[File.status.set("processing"), File.attempt.set(clock.new_id())])
    before = _snapshot(alice)
    response = _delete(api, token)
    assert (response.status_code, response.data["error"]["code"]) == (409, "account_busy")
    assert "processed" in response.data["error"]["message"]
    assert _snapshot(alice) == before
    assert File.get(done.id).status == "completed"


@pytest.mark.parametrize("status", ["initiated", "cancelled"])
def test_an_open_payment_refuses_with_409_and_nothing_changes(api: Api, gateway: Sandbox, status: str) -> None:
    token = api.signed_up("alice")
    alice = _me(api, token)["user"]["id"]
    started = api.call("POST", "/api/initiate-payment/", {}, token).data
    if status == "cancelled":  # still queued: money taken after a cancel must find its account
        payment = Payment.get(started["transaction_id"])
        assert settlement.move(payment, settlement.Status.CANCELLED, via="cancel")[1]
        assert Payment.get(payment.transaction_id).check_queue is not None
    before = _snapshot(alice)
    response = _delete(api, token)
    assert (response.status_code, response.data["error"]["code"]) == (409, "account_busy")
    assert "payment" in response.data["error"]["message"]
    assert _snapshot(alice) == before


# --- deletion: effects ---------------------------------------------------------------------


def test_deletion_ends_everything_personal_and_keeps_the_accounts(
    api: Api, gateway: Sandbox, small_pages: None
) -> None:
    admin_token = _staff(api)
    token = api.signed_up("alice")
    tokens = api.login("alice")
    alice = _me(api, token)["user"]["id"]
    paid = _pay(api, token)
    _failed_payment(alice)
    kept = [_upload(api, token, f"alice-private-{n}.txt") for n in range(3)]
    pending = _upload(api, token, "never-sent.txt", body=None)
    s3 = aws.client("s3")
    s3.put_object(Bucket=settings().upload_bucket, Key=kept[0].object_key, Body=b"a stray second version")
    s3.delete_object(Bucket=settings().upload_bucket, Key=kept[1].object_key)  # a delete marker
    assert api.call("DELETE", f"/api/files/{kept[2].id}/", None, token).status_code == 204
    other = api.signed_up("bob")
    _pay(api, other)
    bobs = _upload(api, other, "bobs.txt")
    before = admin.stats_view()
    assert len(_versions(purge.user_prefix(alice))) >= 4

    assert _delete(api, token).status_code == 204

    assert _versions(purge.user_prefix(alice)) == []  # every version and marker
    assert len(_versions(bobs.object_key)) == 1
    for item in [*kept, pending]:
        record = File.get(item.id)
        assert record.status == "deleted" and record.filename == f"{item.id}.txt"
    assert File.get(bobs.id).status == "completed"
    with pytest.raises(User.DoesNotExist):
        User.get(alice, consistent_read=True)
    for key in ("username#alice", "email#alice@example.com"):
        with pytest.raises(Claim.DoesNotExist):
            Claim.get(key)
    kept_payment = Payment.get(paid)
    assert kept_payment.status == "success" and kept_payment.user_id == alice
    listed = api.call("GET", f"/api/admin/transactions/?user_id={alice}", None, admin_token).data["items"]
    assert {p["transaction_id"] for p in listed} >= {paid} and {p["username"] for p in listed} == {None}
    entries = list(Activity.query(alice))
    assert entries[-1].action == "account_deleted"
    text = json.dumps([e.metadata for e in entries])
    for personal in ("alice", "alice-private", "never-sent", "example.com"):
        assert personal not in text
    assert {e.action for e in entries} >= {"user_registered", "payment_success", "file_deleted"}
    after = admin.stats_view()
    assert after["users"] == before["users"] - 1
    assert (after["revenue"], after["payments"]) == (before["revenue"], before["payments"])
    assert after["files"]["deleted"] == before["files"]["deleted"] + 3
    assert recount.drift() == []
    feed = api.call("GET", f"/api/admin/activity/?action=account_deleted&user_id={alice}", None, admin_token).data
    assert [e["username"] for e in feed["items"]] == [None]

    for old in (token, tokens["access"]):
        assert api.call("GET", "/api/me/", None, old).status_code == 401
    assert api.call("POST", "/api/refresh/", {"refresh": tokens["refresh"]}).status_code == 401
    assert api.call("POST", "/api/login/", {"username": "alice", "password": PASSWORD}).status_code == 401
    assert api.register("alice").status_code == 201  # the same username and email, free again
    again = api.login("alice")["access"]
    assert _me(api, again)["user"]["id"] != alice
    assert api.call("GET", "/api/me/export/", None, again).data["payments"] == []
    assert recount.drift() == []


def _staff(api: Api) -> str:
    from chalicelib.accounts import accounts

    accounts.create_user("root", "root@example.com", PASSWORD, role="superuser")
    return str(api.staff_login("root", PASSWORD)["access"])


def test_two_parallel_deletions_one_204_one_401(api: Api, atomic_dynamodb: None) -> None:
    token = api.signed_up("alice")
    answers: list[int] = []
    start = threading.Barrier(2)

    def leave() -> None:
        start.wait()
        answers.append(_delete(api, token).status_code)

    threads = [threading.Thread(target=leave) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [204, 401]
    assert recount.drift() == []
    assert admin.stats_view()["users"] == 0


def test_a_deletion_cut_short_is_finished_by_logging_in_and_deleting_again(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = api.signed_up("alice")
    alice = _me(api, token)["user"]["id"]
    _pay(api, token)
    item = _upload(api, token, "notes.txt")

    def crash(user_id: str, **kwargs: Any) -> int:
        raise RuntimeError("the Lambda ran out of time")

    monkeypatch.setattr(purge, "purge_objects", crash)
    assert _delete(api, token).status_code == 500
    assert api.call("GET", "/api/me/", None, token).status_code == 401  # the mark ended the session
    assert File.get(item.id).status == "deleted" and User.get(alice).deleting
    again = api.login("alice")["access"]
    refused = api.call("POST", "/api/upload/", {"filename": "more.txt", "size": 3}, again)
    assert refused.status_code != 201  # a deletion once begun takes no new file
    monkeypatch.undo()
    assert _delete(api, again).status_code == 204
    assert _versions(purge.user_prefix(alice)) == []
    assert recount.drift() == []


def test_a_deleted_account_leaves_an_unverified_address_and_frees_a_verified_one(
    api: Api, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests import mailbox

    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    shared = "shared@example.com"
    for name in ("alice", "bob"):
        assert api.register(name, email=shared).status_code == 201  # nobody verified it: both may hold it
    alice, bob = (str(Claim.get(f"username#{name}").owner_id) for name in ("alice", "bob"))
    assert Claim.get(f"email-pending#{shared}").holders == {alice, bob}
    assert _delete(api, api.login("alice")["access"]).status_code == 204
    assert Claim.get(f"email-pending#{shared}").holders == {bob}  # alice no longer counts to its cap

    mailbox.deliver_all(api.client)
    [token] = [t for m in mailbox.outbox() for t in mailbox.links(m, "verify") if t.startswith(f"{bob}.")]
    assert api.call("POST", "/api/email/verify/", {"token": token}).status_code == 200
    assert Claim.get(f"email#{shared}").owner_id == bob
    assert _delete(api, api.login("bob")["access"]).status_code == 204
    with pytest.raises(Claim.DoesNotExist):
        Claim.get(f"email#{shared}")  # the verified address is free again
    assert api.register("carol", email=shared).status_code == 201

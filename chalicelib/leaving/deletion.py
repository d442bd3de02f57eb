"""`DELETE /api/me/`: the account ends; what the accountant must keep stays, without the person.

Order, each step safe to run again (docs/accounts.md, "Leaving"):
1. the password, checked and counted like a login;
2. refused with `409 account_busy` while money or a file is in flight: an open payment
   (`initiated`, or `failed`/`cancelled` still re-checked by the reconciler: money taken
   after a cancel would otherwise settle on no account) or a file in `processing`;
3. the mark, one conditional update: the token epoch moves (every session ends) and
   `deleting` is set (no new payment or file from then on), only if the epoch is still the
   caller's and no payment is `initiated`; a second, parallel deletion loses here (401);
4. every file to `deleted` and every stored version of its object gone (`files.purge`);
5. personal values out of the account's activity entries, then its passkeys;
6. last, one transaction: the user deleted (only if marked and holding no file), its
   username and email claims released, the `users` count lowered, `account_deleted` written.
A run cut short after 3 is finished by logging in again (the password still works until 6)
and deleting again; payments are never touched.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.accounts import accounts, passkeys, ratelimit
from chalicelib.accounts.accounts import Principal
from chalicelib.core import activity, clock, counters, errors, logs
from chalicelib.core.db import conditional_failed, transact_get, transact_write, transaction_lost_condition
from chalicelib.core.models import Activity, Claim, File, Payment, User
from chalicelib.core.validation import Fields
from chalicelib.files import purge
from chalicelib.files.uploads import FileStatus

PAGE_SIZE = 100  # records read per Query page
# Activity metadata that names or locates the person (the account's username, what was typed
# at a login, a file's name); ids, amounts and reasons stay.
PERSONAL_METADATA = frozenset({"username", "email", "identifier", "filename", "ip"})

BUSY_FILE = "A file is still being processed; delete your account once it is done (a minute at most)."
BUSY_PAYMENT = "A payment is still open with the gateway; delete your account once it is settled or has expired."

log = logs.get("leaving")


class AccountBusy(errors.Conflict):
    code = "account_busy"


def delete_account(principal: Principal, body: dict[str, Any]) -> None:
    fields = Fields(body)
    password = fields.string("password", max_length=1000)
    fields.done()
    assert password is not None
    user = principal.user
    ratelimit.clear(accounts.check_password(user, password, reason="wrong_password_on_delete"))
    _refuse_while_busy(user)
    _mark(user)
    moved, busy = purge.retire_files(user.id)
    versions = purge.purge_objects(user.id, keep={item.object_key for item in busy})
    if busy:
        raise AccountBusy(BUSY_FILE)
    erased = _erase_personal_activity(user.id)
    forgotten = passkeys.forget_all(user)
    _remove(user, files=moved, versions=versions)
    counts = {"files": moved, "versions": versions, "entries_erased": erased, "passkeys": forgotten}
    logs.event(log, "account deleted", user_id=user.id, **counts)


def _refuse_while_busy(user: User) -> None:
    """Nothing is changed when money or a file is in flight (reads only: the two indexes).

    An open payment is one the reconciler may still move: in its queue (`check_queue`), which
    holds every `initiated` payment and `failed`/`cancelled` ones until their expiry window ends;
    `open_payments` and `payments_in_review` (read consistently with the caller) count the
    `initiated` ones and those waiting for a superuser's review at once."""
    queued = Payment.by_user.query(user.id, filter_condition=Payment.check_queue.exists(), page_size=PAGE_SIZE)
    held = int(user.open_payments or 0) + int(user.payments_in_review or 0)
    if held > 0 or any(True for _ in queued):
        raise AccountBusy(BUSY_PAYMENT)
    processing = File.by_user.query(user.id, filter_condition=File.status == FileStatus.PROCESSING, page_size=PAGE_SIZE)
    if any(True for _ in processing):
        raise AccountBusy(BUSY_FILE)


def _mark(user: User) -> None:
    """Every session ends and the account takes nothing new, in one conditional write."""
    no_open_payment = (User.open_payments.does_not_exist() | (User.open_payments == 0)) & (
        User.payments_in_review.does_not_exist() | (User.payments_in_review == 0)
    )
    _, end_sessions, unchanged_epoch = accounts.ending_sessions(user)
    try:
        user.update(
            actions=[end_sessions, User.deleting.set(clock.now_iso())],
            condition=User.id.exists() & unchanged_epoch & no_open_payment,
        )
    except UpdateError as error:
        if not conditional_failed(error):
            raise
        try:
            current = User.get(user.id, consistent_read=True)
        except DoesNotExist:
            current = None
        if current is not None and current.token_epoch == user.token_epoch and current.open_payments:
            raise AccountBusy(BUSY_PAYMENT) from None
        raise errors.Unauthorized("The session ended: the account changed meanwhile.", code="invalid_token") from None


def _erase_personal_activity(user_id: str) -> int:
    """Rewrite, in place, the account's entries whose metadata names the person."""
    erased = 0
    for item in Activity.query(user_id, page_size=PAGE_SIZE):
        metadata = item.metadata or {}
        if PERSONAL_METADATA.isdisjoint(metadata):
            continue
        item.metadata = {key: value for key, value in metadata.items() if key not in PERSONAL_METADATA}
        item.save(condition=Activity.sk.exists())
        erased += 1
    return erased


def _owned_claims(user: User) -> tuple[list[str], str | None]:
    """The username and email claims this account holds, and the unverified address's pending
    item if the account is one of its holders (one read of all three)."""
    keys = [accounts.username_claim(user.username)]
    if user.email:
        keys += [accounts.email_claim(user.email), accounts.pending_claim(user.email)]
    with transact_get() as transaction:
        futures = [(key, transaction.get(Claim, key)) for key in keys]
    owned, pending = [], None
    for key, future in futures:
        try:
            claim = future.get()
        except DoesNotExist:
            continue
        if claim.owner_id == user.id:
            owned.append(key)
        elif user.id in (claim.holders or set()):
            pending = key
    return owned, pending


def _remove(user: User, *, files: int, versions: int) -> None:
    """The user and its claims go, the `users` count drops, `account_deleted` is written, at once.

    Only if still marked and holding no file: a file recorded just before the mark but not yet
    in the index read by `retire_files` keeps the account until a re-run retires it."""
    no_file_held = User.files_held.does_not_exist() | (User.files_held == 0)
    entry = activity.entry("account_deleted", user.id, metadata={"files": files, "versions": versions})
    claims, pending = _owned_claims(user)
    try:
        with transact_write() as transaction:
            transaction.delete(User(user.id), condition=User.deleting.exists() & no_file_held)
            for key in claims:
                transaction.delete(Claim(key), condition=Claim.owner_id == user.id)
            if pending:  # no longer one of the address's unverified holders (they count to its cap)
                leave: list[Action] = [Claim.holders.delete({user.id})]
                transaction.update(Claim(pending), actions=leave, condition=Claim.holders.contains(user.id))
            transaction.save(entry, condition=Activity.sk.does_not_exist())
            counters.add(transaction, {counters.USERS: -1}, day=user.day)
    except TransactWriteError as error:
        if not transaction_lost_condition(error):
            raise
        raise AccountBusy("Your files changed while the account was being deleted; please try again.") from None

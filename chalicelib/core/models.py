"""DynamoDB tables (pynamodb models): the single source of truth for every key and index.

The local bootstrap creates tables from these classes and `infra/template.py` renders
the CloudFormation resources from them, so the two cannot disagree.

Listing rules (no Scan anywhere):
- a user's own records: the `by_user` index (or the activity table's hash key);
- global admin feeds: the `by_day` index, one partition per UTC day, walked newest first;
- status/action filters: `by_status_day` / `by_action_day`, also sharded per day.
"""

from __future__ import annotations

from typing import TypedDict

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.constants import STREAM_NEW_IMAGE
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.core import db
from chalicelib.core.clock import day_of
from chalicelib.core.config import settings

db.share_one_session()

PAY_PER_REQUEST = "PAY_PER_REQUEST"


class _TableMeta:
    """What every table's `Meta` shares; each model names its table in its own `Meta`."""

    billing_mode = PAY_PER_REQUEST
    max_retry_attempts = 3
    connect_timeout_seconds = 2
    read_timeout_seconds = 5


def status_day(status: str, created_at: str) -> str:
    return f"{status}#{day_of(created_at)}"


class SearchKeys(TypedDict):
    username_key: str
    username_bucket: str
    email_key: str
    email_bucket: str


def search_keys(username: str, email: str) -> SearchKeys:
    """The attributes that put a user into the staff search indexes (`User.by_username`,
    `User.by_email`): the case-folded value, in a partition named by its first character."""
    name, address = username.lower(), email.lower()
    return SearchKeys(username_key=name, username_bucket=name[:1], email_key=address, email_bucket=address[:1])


class UserByDay(GlobalSecondaryIndex["User"]):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class UserByUsername(GlobalSecondaryIndex["User"]):
    class Meta:
        index_name = "by_username"
        projection = AllProjection()

    username_bucket = UnicodeAttribute(hash_key=True)
    username_key = UnicodeAttribute(range_key=True)


class UserByEmail(GlobalSecondaryIndex["User"]):
    class Meta:
        index_name = "by_email"
        projection = AllProjection()

    email_bucket = UnicodeAttribute(hash_key=True)
    email_key = UnicodeAttribute(range_key=True)


class User(Model):
    class Meta(_TableMeta):
        table_name = settings().resource_name("users")

    id = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute()
    # Null once another account verified this address first (see docs/accounts.md).
    email = UnicodeAttribute(null=True)
    email_verified = BooleanAttribute(null=True)  # absent = not verified
    mfa_enabled = BooleanAttribute(null=True)  # a confirmed TOTP second factor (absent = none)
    # The second factor (chalicelib/accounts/mfa.py): the confirmed secret, a setup not yet
    # confirmed, the last accepted time step (a code is accepted once) and the sha256 of each
    # unused recovery code (a DynamoDB set: one is removed with a conditional DELETE).
    mfa_secret = UnicodeAttribute(null=True)
    mfa_pending_secret = UnicodeAttribute(null=True)
    mfa_last_step = NumberAttribute(null=True)
    mfa_recovery_hashes = UnicodeSetAttribute(null=True)
    # Passkeys registered (`Passkey` items), moved in the transaction that adds or removes one.
    passkey_count = NumberAttribute(null=True)
    password_hash = UnicodeAttribute()
    is_staff = BooleanAttribute(default=False)
    is_superuser = BooleanAttribute(default=False)
    has_paid = BooleanAttribute(default=False)
    created_at = UnicodeAttribute()
    day = UnicodeAttribute()
    # Tokens carry the epoch they were issued in; a password change moves it (absent = 0).
    token_epoch = NumberAttribute(null=True)
    # Payments still `initiated`: raised in the initiation transaction, lowered when one settles.
    open_payments = NumberAttribute(null=True)
    # Payments waiting in `review` (a risky card): no new payment and no deletion meanwhile.
    payments_in_review = NumberAttribute(null=True)
    # Fair use: the files that are not `deleted` and their declared bytes, moved in the same
    # transaction as the file's status (absent = 0); the quota is a condition on them.
    files_held = NumberAttribute(null=True)
    bytes_held = NumberAttribute(null=True)
    # Password reset: sha256 of the newest link's token and when it expires (one at a time).
    reset_token_hash = UnicodeAttribute(null=True)
    reset_expires_at = UnicodeAttribute(null=True)
    # Email verification: the same for the newest verification link (`accounts.verification`).
    verify_token_hash = UnicodeAttribute(null=True)
    verify_expires_at = UnicodeAttribute(null=True)
    language = UnicodeAttribute(null=True)  # the emails' language (`en` when absent)
    # Set when the account's deletion began (`chalicelib.leaving`): it takes no new payment or file.
    deleting = UnicodeAttribute(null=True)
    by_day = UserByDay()
    # Staff search by prefix, one Query each: hash = first character of the case-folded value
    # (a one-character prefix is a whole partition), range = the value (`begins_with` the rest).
    # Null on records written before the indexes existed (see docs/api.md, "Find a user": backfill).
    username_key = UnicodeAttribute(null=True)
    username_bucket = UnicodeAttribute(null=True)
    email_key = UnicodeAttribute(null=True)
    email_bucket = UnicodeAttribute(null=True)
    by_username = UserByUsername()
    by_email = UserByEmail()


class Claim(Model):
    """A unique value owned by one record: `username#alice`, `email#a@b.c`, `idem#<user>#<key>`.

    Claims are written in the same transaction as their owner, which makes uniqueness
    race-free without reading first. `email#` is a *verified* address; an address only
    unverified accounts hold is one `email-pending#a@b.c` item listing them in `holders`
    (no owner: an unverified address blocks nobody, see `accounts.verification`).
    """

    class Meta(_TableMeta):
        table_name = settings().resource_name("claims")

    key = UnicodeAttribute(hash_key=True)
    owner_id = UnicodeAttribute(null=True)  # absent on `email-pending#…` only
    created_at = UnicodeAttribute()
    holders = UnicodeSetAttribute(null=True)  # on `email-pending#…`: the accounts holding it unverified
    body_hash = UnicodeAttribute(null=True)  # on `idem#…`: the request it answers (reuse with another is 422)


class RevokedToken(Model):
    """A JWT id that must no longer be accepted (logout, used refresh token), or a spent
    passkey challenge (`passkey#<nonce>`: each is accepted once, `accounts.passkey_challenges`)."""

    class Meta(_TableMeta):
        table_name = settings().resource_name("revoked-tokens")

    jti = UnicodeAttribute(hash_key=True)
    expires_at = TTLAttribute()


class RateLimit(Model):
    """A fixed-window counter (failed logins, gateway re-checks)."""

    class Meta(_TableMeta):
        table_name = settings().resource_name("rate-limits")

    key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(attr_name="count", default=0)  # not `count`: that is Model.count()
    expires_at = TTLAttribute()


class MailLog(Model):
    """One email's delivery state under its dedupe key (`chalicelib.mail.delivery`)."""

    class Meta(_TableMeta):
        table_name = settings().resource_name("mail-log")

    key = UnicodeAttribute(hash_key=True)
    state = UnicodeAttribute()  # sending | sent | dropped
    lease_until = UnicodeAttribute(null=True)  # while `sending`: when another run may take over
    expires_at = TTLAttribute()


class Outbox(Model):
    """Work a change asks for (an email job), written in the change's own transaction.

    The table's stream hands each new item to the relay (`chalicelib.mail.jobs.relay`), which
    puts it on the mail queue: the job exists exactly when the change does, whatever crashes
    after the commit. Items are kept a while for the record, then expire; the stream's REMOVE
    records are filtered out by the event source mapping.
    """

    class Meta(_TableMeta):
        table_name = settings().resource_name("outbox")
        stream_view_type = STREAM_NEW_IMAGE

    id = UnicodeAttribute(hash_key=True)  # unique per item; the job's own `id` is its dedupe key
    job = JSONAttribute()
    created_at = UnicodeAttribute()
    expires_at = TTLAttribute()


class Passkey(Model):
    """One WebAuthn credential of a user (`chalicelib.accounts.passkeys`).

    The user's partition holds at most `passkeys.MAX_PASSKEYS` items, read newest first by
    `sk` = `<created_at>#<id>`; a credential id is unique across accounts through its claim
    (`passkey#<sha256 of the id>`), written in the same transaction."""

    class Meta(_TableMeta):
        table_name = settings().resource_name("passkeys")

    user_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    id = UnicodeAttribute()
    name = UnicodeAttribute()
    credential_id = UnicodeAttribute()  # base64url, as the browser sends it
    public_key = UnicodeAttribute()  # the COSE key, base64url
    sign_count = NumberAttribute(default=0)
    transports = UnicodeSetAttribute(null=True)
    aaguid = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    last_used_at = UnicodeAttribute(null=True)


class PaymentByUser(GlobalSecondaryIndex["Payment"]):
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class PaymentByDay(GlobalSecondaryIndex["Payment"]):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class PaymentByStatusDay(GlobalSecondaryIndex["Payment"]):
    class Meta:
        index_name = "by_status_day"
        projection = AllProjection()

    status_day = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class PaymentByNextCheck(GlobalSecondaryIndex["Payment"]):
    class Meta:
        index_name = "by_next_check"
        projection = AllProjection()

    check_queue = UnicodeAttribute(hash_key=True)
    next_check_at = UnicodeAttribute(range_key=True)


class Payment(Model):
    class Meta(_TableMeta):
        table_name = settings().resource_name("payments")

    transaction_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    status = UnicodeAttribute()
    amount = UnicodeAttribute()
    currency = UnicodeAttribute()
    gateway_transaction_id = UnicodeAttribute(null=True)
    payment_url = UnicodeAttribute(null=True)
    failure_reason = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    last_checked_at = UnicodeAttribute(null=True)
    day = UnicodeAttribute()
    status_day = UnicodeAttribute()
    cancel_token_hash = UnicodeAttribute(null=True)  # sha256 of the token in the cancel URL we handed out
    searched_at = UnicodeAttribute(null=True)  # the last claimed gateway search slot (one per 10 s)
    # The reconciler's queue (sparse index): present while the payment still needs re-checks.
    check_queue = UnicodeAttribute(null=True)
    next_check_at = UnicodeAttribute(null=True)
    checks = NumberAttribute(null=True)  # reconciler checks so far: the backoff's exponent
    review_reason = UnicodeAttribute(null=True)  # why a payment waits in `review`
    review_decision = UnicodeAttribute(null=True)  # a superuser's "approved" / "rejected"
    # What the gateway charged in taka and its rate (the merchant's currency may be another).
    gateway_amount_bdt = UnicodeAttribute(null=True)
    gateway_rate = UnicodeAttribute(null=True)
    by_user = PaymentByUser()
    by_day = PaymentByDay()
    by_status_day = PaymentByStatusDay()
    by_next_check = PaymentByNextCheck()


class FileByUser(GlobalSecondaryIndex["File"]):
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class FileByDay(GlobalSecondaryIndex["File"]):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class FileByStatusDay(GlobalSecondaryIndex["File"]):
    class Meta:
        index_name = "by_status_day"
        projection = AllProjection()

    status_day = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class FileListedByUser(GlobalSecondaryIndex["File"]):
    class Meta:
        index_name = "listed_by_user"
        projection = AllProjection()

    listed_user_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class File(Model):
    class Meta(_TableMeta):
        table_name = settings().resource_name("files")

    id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    filename = UnicodeAttribute()
    size = NumberAttribute()
    content_type = UnicodeAttribute()
    object_key = UnicodeAttribute()
    status = UnicodeAttribute()
    word_count = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    # The worker run that owns a `processing` file; its final write is conditional on it.
    attempt = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    day = UnicodeAttribute()
    status_day = UnicodeAttribute()
    by_user = FileByUser()
    by_day = FileByDay()
    by_status_day = FileByStatusDay()
    # The object version that was counted: downloads are presigned for it (see `uploads`).
    version_id = UnicodeAttribute(null=True)
    # `user_id` until the owner deletes the file: the owner's list is this sparse index.
    listed_user_id = UnicodeAttribute(null=True)
    listed_by_user = FileListedByUser()


class ActivityByDay(GlobalSecondaryIndex["Activity"]):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class ActivityByActionDay(GlobalSecondaryIndex["Activity"]):
    class Meta:
        index_name = "by_action_day"
        projection = AllProjection()

    action_day = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class Activity(Model):
    """Append-only audit entries; `sk` = `<created_at>#<id>` sorts newest last."""

    class Meta(_TableMeta):
        table_name = settings().resource_name("activity")

    user_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    id = UnicodeAttribute()
    action = UnicodeAttribute()
    actor_id = UnicodeAttribute(null=True)
    metadata = JSONAttribute(default=dict)
    created_at = UnicodeAttribute()
    day = UnicodeAttribute()
    action_day = UnicodeAttribute()
    by_day = ActivityByDay()
    by_action_day = ActivityByActionDay()


class Counter(Model):
    """One atomically incremented number per statistic (`users`, `payments#success`, …)."""

    class Meta(_TableMeta):
        table_name = settings().resource_name("counters")

    name = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)
    since = UnicodeAttribute(null=True)  # on `users`: the first day anything was recorded


class DailyCounter(Model):
    """One UTC day's counts, sharded: `sk` = `YYYY-MM-DD#<shard>` under the one `scope`.

    A single partition so that any run of days is one Query (a range of `sk`), and the first
    item is the first day anything was recorded. Each attribute is a count of the records
    *created* that day (in their current status), which a recount re-derives from the same
    day-sharded indexes.
    """

    class Meta(_TableMeta):
        table_name = settings().resource_name("daily-counters")

    scope = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    users = NumberAttribute(default=0)
    payments_success = NumberAttribute(default=0)
    payments_failed = NumberAttribute(default=0)
    revenue = NumberAttribute(default=0)
    files_completed = NumberAttribute(default=0)
    files_failed = NumberAttribute(default=0)
    words = NumberAttribute(default=0)


ALL_MODELS: tuple[type[Model], ...] = (
    User,
    Claim,
    RevokedToken,
    RateLimit,
    MailLog,
    Outbox,
    Passkey,
    Payment,
    File,
    Activity,
    Counter,
    DailyCounter,
)

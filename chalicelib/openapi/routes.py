"""Every route the API serves, declared once: where it is, who may call it, what it takes and
what it answers. `app.py` serves each with its handler (`app.serve`); the edge checks requests
against these and `chalicelib.openapi.document` derives the document from them.

How to add a route: docs/api.md ("One declaration per route"). The choices and patterns below
repeat the domain's constants (statuses, actions, formats) so that this module imports nothing
heavy at cold start; tests/unit/staff/test_admin.py checks the choices, the fuzzer the rest.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.core.declare import (
    WHITESPACE,
    Answer,
    Body,
    Boolean,
    Integer,
    Object,
    Param,
    Refusal,
    Route,
    Text,
    error,
    page_of,
)
from chalicelib.core.validation import password_problem

PAYMENT_STATUSES = ("initiated", "success", "review", "failed", "cancelled", "expired")
FILE_STATUSES = ("pending_upload", "processing", "completed", "failed", "deleted")
ACTIONS = (
    "account_deleted",
    "admin_file_reprocess",
    "admin_payment_verify",
    "admin_staff_changed",
    "email_verified",
    "file_deleted",
    "file_processed",
    "file_processing_failed",
    "file_upload_expired",
    "file_upload_requested",
    "file_uploaded",
    "login",
    "login_failed",
    "logout",
    "mfa_disabled",
    "mfa_enabled",
    "passkey_added",
    "passkey_removed",
    "password_changed",
    "password_reset",
    "payment_callback_rejected",
    "payment_review",
    "payment_approved",
    "payment_rejected",
    "payment_cancelled",
    "payment_expired",
    "payment_failed",
    "payment_initiated",
    "payment_success",
    "user_registered",
)
ID = r"^[0-9a-f]{32}$"
USERNAME = r"^[A-Za-z0-9@.+_-]{3,150}$"
EMAIL = f"^[^@{WHITESPACE}]+@[^@{WHITESPACE}]+\\.[^@{WHITESPACE}]+$"  # accounts.EMAIL (Python's whitespace)
# Printable ASCII without spaces at the ends (HTTP strips those before the value arrives).
IDEMPOTENCY_KEY = r"^[!-~]([ -~]{0,126}[!-~])?$"

PASSWORD = Text(description="8 to 72 bytes of UTF-8", rule=password_problem)
LENGTH_IN_BYTES = "8 to 72 bytes of UTF-8: a password of other length in bytes is refused"
TOKEN = Text(max_length=None, description="Any length: one that is not a live token answers `invalid_token`.")
CODE = Text(
    max_length=64,
    description=(
        "A 6-digit TOTP code (the previous, current or next 30 s step), or one recovery code (dashes and case ignored)"
    ),
)
PAGED = {
    "limit": Param(Integer(minimum=1, maximum=100, default=20), code="invalid_limit"),
    "cursor": Param(
        Text(max_length=None, description="Opaque; bound to the list, filters and caller it came from."),
        code="invalid_cursor",
    ),
}
BAD_CURSOR = Refusal("invalid_cursor", why="a cursor this list did not hand out, for these filters, to this caller")
USER_FILTER = Param(
    Text(pattern=ID, description="Only this user's records (a user's 32-hex id; an unknown id gives an empty list)."),
    code="invalid_filter",
)
STAFF_ONLY = error(
    "`forbidden`: the caller is neither staff nor a superuser; `mfa_required`: staff whose session did not "
    "pass the second factor."
)
SUPERUSER_ONLY = error(
    "`forbidden`: only a superuser may change anything (staff may only look); `mfa_required`: the session "
    "did not pass the second factor."
)
IGNORED_IDENTITY = Text(max_length=None, blank=True, description="Ignored: the gateway gets the account's own.")
RETURN_REFUSED = Refusal("invalid_callback", why="with Accept: application/json, a return the gateway does not confirm")
LIST_ERRORS = error(
    "`invalid_filter` (unknown status/action, malformed user_id), `invalid_limit`, or `invalid_cursor` (tampered, "
    "or taken from another list or filter)."
)
ACCEPT = {
    "Accept": Param(
        Text(max_length=None, blank=True, description="application/json for a JSON answer instead of the 303 redirect.")
    )
}


def _own_list(path: str, summary: str, tag: str, page: str) -> Route:
    """One of the caller's own lists: newest first, paged."""
    return Route(
        "GET", path, summary, tag, query=PAGED, refused=(BAD_CURSOR,), answers={200: Answer("Page", schema=page)}
    )


def _staff_list(path: str, summary: str, description: str, item: str, filters: dict[str, Param]) -> Route:
    """One of the admin lists: staff only, newest first, filtered, paged."""
    return Route(
        "GET",
        path,
        summary,
        "admin",
        description=description,
        query={**filters, **PAGED},
        refused=(BAD_CURSOR,),
        answers={200: Answer("One page, newest first", schema=page_of(item)), 400: LIST_ERRORS, 403: STAFF_ONLY},
    )


HEALTH_CHECK = Route(
    "GET",
    "/api/health",
    "Readiness: ok once the tables answer",
    "accounts",
    auth=False,
    answers={
        200: Answer(
            'ok; a trial stage that runs on the sandbox gateway (ALLOW_SANDBOX_GATEWAY=true) adds "gateway": "sandbox"',
            schema={
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"type": "string", "enum": ["ok"]},
                    "gateway": {"type": "string", "enum": ["sandbox"]},
                },
            },
        ),
        503: error(),
    },
)


OPENAPI_DOCUMENT = Route(
    "GET",
    "/api/openapi.json",
    "This document",
    "accounts",
    auth=False,
    answers={
        200: Answer("OpenAPI 3 document"),
    },
)


REGISTER = Route(
    "POST",
    "/api/register",
    "Create an account",
    "accounts",
    description=(
        "Sends a verification link (`{PUBLIC_BASE_URL}/dashboard/?verify=<token>`, see `/api/email/verify/`). "
        "An email that only unverified accounts hold blocks nobody: up to 20 accounts may hold one address "
        "unverified; `email_taken` answers for a verified address, or past those 20."
    ),
    auth=False,
    body=Body(
        required={
            "username": Text(
                max_length=150, pattern=USERNAME, message="3 to 150 characters: letters, digits and @.+-_ only."
            ),
            "email": Text(max_length=254, pattern=EMAIL, message="Enter a valid email address."),
            "password": PASSWORD,
        },
        optional={
            "password2": Text(description="optional confirmation: the same password"),
            "language": Text(choices=("en", "bn"), description="The language of the account's emails (default en)."),
        },
    ),
    refused=(Refusal("validation_error", ("password", "password2"), LENGTH_IN_BYTES + "; password2 unlike password"),),
    answers={
        201: Answer(
            "Created", schema={"type": "object", "properties": {"user": {"$ref": "#/components/schemas/User"}}}
        ),
        409: error(
            "username_taken / email_taken: a verified email (or one held unverified by 20 accounts "
            "already); one namespace for login identifiers, so a username equal to any account's email (or "
            "an email equal to any account's username) is taken too; conflict when another registration met"
            " this one twice"
        ),
    },
)


LOGIN = Route(
    "POST",
    "/api/login",
    "Exchange username (or email) and password for tokens",
    "accounts",
    auth=False,
    body=Body(required={"username": Text(max_length=254, description="username or email"), "password": Text()}),
    answers={
        200: Answer(
            "Tokens; for an account with a second factor, an MfaChallenge instead (then POST /api/login/mfa/)",
            schema={"oneOf": [{"$ref": "#/components/schemas/Tokens"}, {"$ref": "#/components/schemas/MfaChallenge"}]},
        ),
        401: error("invalid_credentials: the same answer (and time) for an unknown user and a wrong password"),
        429: error(
            "too_many_attempts: counted before the password is checked, per account whichever identifier "
            "names it, and per client address for identifiers naming no account"
        ),
    },
)


REFRESH = Route(
    "POST",
    "/api/refresh",
    "Rotate a refresh token (the old one stops working)",
    "accounts",
    description=(
        "A refresh token issued before the account's last password change (or `make user` reset) answers 401 "
        "invalid_token."
    ),
    auth=False,
    body=Body(required={"refresh": Text(max_length=4096)}),
    answers={
        200: Answer("New tokens", schema="Tokens"),
        401: error("invalid_token: an unknown, expired, revoked or already rotated refresh token"),
    },
)


LOGOUT = Route(
    "POST",
    "/api/logout",
    "Revoke this access token and, if given, the refresh token",
    "accounts",
    body=Body(optional={"refresh": Text(max_length=4096)}, may_be_empty=True),
    answers={
        204: Answer("Logged out"),
    },
)


CHANGE_PASSWORD = Route(
    "POST",
    "/api/password/change",
    "Change the password; every other session of the account ends",
    "accounts",
    description=(
        "Answers fresh tokens for this session. Every access and refresh token issued before (on any device) "
        "answers 401 from then on: tokens carry the account's epoch, which this moves. Wrong guesses count "
        "toward the login lockout."
    ),
    body=Body(required={"current_password": Text(), "new_password": PASSWORD}),
    refused=(Refusal("validation_error", ("new_password",), LENGTH_IN_BYTES),),
    answers={
        200: Answer("Fresh tokens for this session", schema="Tokens"),
        401: error("invalid_credentials for a wrong current password; invalid_token without a valid session"),
        429: error("too_many_attempts"),
    },
)


ME = Route(
    "GET",
    "/api/me",
    "The caller's account",
    "accounts",
    answers={
        200: Answer(
            "The account, and what it holds against its fair-use quota",
            schema={
                "type": "object",
                "properties": {
                    "user": {"$ref": "#/components/schemas/User"},
                    "usage": {"$ref": "#/components/schemas/Usage"},
                },
            },
        ),
    },
)


MY_ACTIVITY = _own_list("/api/activity", "The caller's own activity, newest first", "accounts", "ActivityPage")


DASHBOARD_PAGE = Route(
    "GET",
    "/dashboard",
    "The browser dashboard (HTML)",
    "accounts",
    auth=False,
    answers={
        200: Answer("HTML page"),
    },
)


FORGOT_PASSWORD = Route(
    "POST",
    "/api/password/forgot",
    "Ask for a password reset link by email",
    "accounts",
    description=(
        "Answers 202 with the same body, and after the same AWS calls (one SQS message), whether or not an "
        "account holds the address: the mail worker looks the address up and sends each account holding it a "
        "link `{PUBLIC_BASE_URL}/dashboard/?reset=<token>`, valid 30 minutes, only the newest one working. At "
        "most 3 reset emails per account per hour; more are dropped silently."
    ),
    auth=False,
    body=Body(required={"email": Text(max_length=254, pattern=EMAIL, message="Enter a valid email address.")}),
    answers={
        202: Answer(
            "Accepted (whatever the address)",
            schema={
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"type": "string", "enum": ["accepted"]}},
            },
        ),
    },
)


RESET_PASSWORD = Route(
    "POST",
    "/api/password/reset",
    "Set a new password with a reset link's token; every session of the account ends",
    "accounts",
    description=(
        "The token is the `reset` parameter of the emailed link. It works once, for 30 minutes, and only while "
        "it is the account's newest; of parallel requests with one token exactly one succeeds. Answers fresh "
        'tokens; every earlier access and refresh token answers 401. Sends the "your password was changed" '
        "email. Activity `password_reset`."
    ),
    auth=False,
    body=Body(required={"token": TOKEN, "new_password": PASSWORD}),
    refused=(
        Refusal("invalid_token", why="an unknown, used, expired, superseded or malformed token"),
        Refusal("validation_error", ("new_password",), LENGTH_IN_BYTES),
    ),
    answers={
        200: Answer(
            "Fresh tokens; for an account with a second factor, an MfaChallenge (the code is still asked for)",
            schema={"oneOf": [{"$ref": "#/components/schemas/Tokens"}, {"$ref": "#/components/schemas/MfaChallenge"}]},
        ),
        400: error(
            "invalid_token for an unknown, used, expired, superseded or malformed token; validation_error "
            "for the password"
        ),
    },
)


ADMIN_USERS = _staff_list(
    "/api/admin/users",
    "All users (staff)",
    "Every account, newest first (walks the users' `by_day` index day by day; never a scan). With `q`: the users "
    "whose username or email starts with `q`, case-insensitive: username matches A→Z, then email-only matches A→Z "
    "(each user once). Two Queries on the sparse `by_username` / `by_email` indexes, whose partition is the first "
    "character of the case-folded value and whose range key is that value (`begins_with`).",
    "User",
    {
        "q": Param(
            Text(
                max_length=254,
                blank=True,
                description="A prefix of a username or email, any case (at most 254 characters; blank lists everyone).",
            ),
            code="invalid_filter",
        )
    },
)
ADMIN_TRANSACTIONS = _staff_list(
    "/api/admin/transactions",
    "All payments (staff)",
    "Every payment, newest first. With `user_id`: that user's payments (optionally of one `status`); otherwise a "
    "walk over the day-sharded index (of that `status`, when given).",
    "AdminPayment",
    {
        "status": Param(
            Text(choices=PAYMENT_STATUSES, description="Only payments in this status."), code="invalid_filter"
        ),
        "user_id": USER_FILTER,
    },
)
ADMIN_FILES = _staff_list(
    "/api/admin/files",
    "All files (staff)",
    "Every file, newest first; filters as for transactions.",
    "AdminFile",
    {
        "status": Param(Text(choices=FILE_STATUSES, description="Only files in this status."), code="invalid_filter"),
        "user_id": USER_FILTER,
    },
)
ADMIN_ACTIVITY = _staff_list(
    "/api/admin/activity",
    "All activity (staff)",
    "The whole activity log, newest first, including the superusers' actions (`admin_*`, whose `actor_id` names the "
    "superuser and `user_id` the subject's owner).",
    "AdminActivity",
    {
        "action": Param(Text(choices=ACTIONS, description="Only entries with this action."), code="invalid_filter"),
        "user_id": USER_FILTER,
    },
)


ADMIN_STATS = Route(
    "GET",
    "/api/admin/stats",
    "Counts and revenue (staff)",
    "admin",
    description=(
        "Read from counters kept current as events happen (one batch read, never a scan). Payment and file "
        "counts are by current status."
    ),
    answers={
        200: Answer("Statistics", schema="Stats"),
        403: STAFF_ONLY,
    },
)


ADMIN_REPROCESS = Route(
    "POST",
    "/api/admin/files/{file_id}/reprocess",
    "Re-queue a failed file (superuser)",
    "admin",
    description=(
        "Moves a `failed` file back to `processing` and queues it for the worker. Logged as "
        "`admin_file_reprocess` with the actor."
    ),
    answers={
        202: Answer("Queued; the file is processing again", schema="AdminFile"),
        403: SUPERUSER_ONLY,
        404: error(),
        409: error("`file_not_failed`: only a failed file can be reprocessed."),
    },
)


ADMIN_VERIFY = Route(
    "POST",
    "/api/admin/transactions/{transaction_id}/verify",
    "Re-check a payment with the gateway now (superuser)",
    "admin",
    description=(
        "Asks aamarPay's search API and settles the payment from its answer (a verified success lifts any "
        "non-success status). Every check is logged as `admin_payment_verify` with the actor and its outcome "
        "(`status`, or the gateway's `error`). The answer carries `gateway`: null when the gateway was not asked "
        '(asked in the last 10 s, or the payment is final), else `{"record": false}` when aamarPay holds no such '
        'transaction (`Invalid-Data`), or `{"record": true, "pay_status", "status_code"}`.'
    ),
    answers={
        200: Answer("The payment after the check", schema="Payment"),
        403: SUPERUSER_ONLY,
        404: error(),
        502: error(),
        504: error(),
    },
)


NOT_IN_REVIEW = error(
    "`invalid_state`: the payment is not in `review` (another superuser decided first, or it never was)."
)
ADMIN_APPROVE = Route(
    "POST",
    "/api/admin/transactions/{transaction_id}/approve",
    "Approve a payment in review (superuser)",
    "admin",
    description=(
        "`review` → `success`: uploads open, the receipt is sent, the counters move. Logged as `payment_approved` "
        "with the actor."
    ),
    answers={
        200: Answer("The payment after the decision", schema="Payment"),
        403: SUPERUSER_ONLY,
        404: error(),
        409: NOT_IN_REVIEW,
    },
)
ADMIN_REJECT = Route(
    "POST",
    "/api/admin/transactions/{transaction_id}/reject",
    "Reject a payment in review (superuser)",
    "admin",
    description=(
        "`review` → `failed` for good: no later gateway answer lifts it. Refund the customer in aamarPay's "
        "merchant panel (the gateway has no refund API). Logged as `payment_rejected` with the actor and the note."
    ),
    body=Body(
        optional={"note": Text(max_length=500, description="Why, for the activity log and the payment's reason.")},
        may_be_empty=True,
    ),
    answers={
        200: Answer("The payment after the decision", schema="Payment"),
        403: SUPERUSER_ONLY,
        404: error(),
        409: NOT_IN_REVIEW,
    },
)


ADMIN_SET_STAFF = Route(
    "POST",
    "/api/admin/users/{user_id}/staff",
    "Grant or revoke staff (superuser)",
    "admin",
    description=(
        "Takes effect on the user's next request (roles are read per request, not from the token). Logged as "
        "`admin_staff_changed` with the actor, in the same transaction. A superuser cannot change their own "
        "flag (`cannot_change_self`: no locking oneself out by mistake; another superuser or `make user` can), "
        "and a superuser is always staff (`superuser_is_staff`)."
    ),
    body=Body(required={"is_staff": Boolean()}),
    refused=(
        Refusal("cannot_change_self", why="a superuser's own flag"),
        Refusal("superuser_is_staff", why="another superuser's flag"),
    ),
    answers={
        200: Answer(
            "The user", schema={"type": "object", "properties": {"user": {"$ref": "#/components/schemas/User"}}}
        ),
        400: error("`validation_error` (body), `cannot_change_self`, `superuser_is_staff`."),
        403: SUPERUSER_ONLY,
        404: error(),
    },
)


ADMIN_USER = Route(
    "GET",
    "/api/admin/users/{user_id}",
    "One user (staff)",
    "admin",
    description="The account behind a user id; its payments, files and activity are the filtered lists (`?user_id=`).",
    answers={
        200: Answer(
            "The user",
            schema={
                "type": "object",
                "required": ["user"],
                "properties": {"user": {"$ref": "#/components/schemas/User"}},
            },
        ),
        403: STAFF_ONLY,
        404: error("`not_found`: no user by that id."),
    },
)


ADMIN_EXPORT = Route(
    "GET",
    "/api/admin/transactions/export",
    "Payments as CSV for the accountant (staff)",
    "admin",
    description=(
        "The payments created in a UTC date range (inclusive, at most 366 days), newest first, as UTF-8 CSV "
        "with a header row. Built from the day-sharded indexes page by page (no scan); API Gateway and Chalice "
        "cannot stream a body, so the file is assembled in memory and capped at 10,000 rows (above that: `400 "
        "export_too_large`, narrow the range). A cell that a spreadsheet would run as a formula (starting with "
        "`=`, `+`, `-`, `@`, tab or CR) is prefixed with an apostrophe."
    ),
    query={
        "from": Param(Text(is_date=True, description="First UTC day, YYYY-MM-DD."), required=True),
        "to": Param(
            Text(is_date=True, description="Last UTC day, YYYY-MM-DD (at most 366 days from `from`)."), required=True
        ),
        "status": Param(
            Text(choices=PAYMENT_STATUSES, description="Only payments in this status."), code="invalid_filter"
        ),
    },
    refused=(
        Refusal("validation_error", ("to",), "`to` before `from`, or more than 366 days"),
        Refusal("export_too_large", why="more than 10,000 rows"),
    ),
    answers={
        200: Answer(
            (
                "The CSV file (`Content-Disposition: attachment`). Columns: transaction_id,username,user_id,sta"
                "tus,amount,currency,gateway_transaction_id,created_at,updated_at."
            ),
            schema={"type": "string"},
            media="text/csv",
        ),
        400: error(
            "`validation_error` (missing or malformed date, end before start, more than 366 days; `details`"
            " names the field), `invalid_filter` (unknown status), `export_too_large` (more than 10,000 "
            "rows)."
        ),
        403: STAFF_ONLY,
    },
)


ADMIN_DAILY_STATS = Route(
    "GET",
    "/api/admin/stats/daily",
    "Daily figures (staff)",
    "admin",
    description=(
        "Per UTC day, from per-day counters kept as events happen (exact, one batch read, no scan): oldest "
        "first, one row per day (zeros included), today last."
    ),
    query={"days": Param(Integer(minimum=1, maximum=366, default=30, description="How many days, today included."))},
    answers={
        200: Answer("The days", schema="DailyStats"),
        400: error("`validation_error`: days is not an integer from 1 to 366."),
        403: STAFF_ONLY,
    },
)


VERIFY_EMAIL = Route(
    "POST",
    "/api/email/verify",
    "Verify the account's email address with the token of an emailed link",
    "email",
    description=(
        "The token is the `verify` parameter of the link `{PUBLIC_BASE_URL}/dashboard/?verify=<token>` that "
        "registration and resend email. It works once, for 7 days, and only while it is the account's newest. "
        "The first account to verify an address owns it (login by email works from then on); every other "
        "account holding that address unverified loses it (`email` becomes null). Of two accounts verifying one"
        " address in parallel, one gets 200 and the other 409 email_taken. Activity `email_verified`."
    ),
    auth=False,
    body=Body(required={"token": TOKEN}),
    refused=(
        Refusal("invalid_token", why="an unknown, used, expired, superseded or malformed token, or another account's"),
    ),
    answers={
        200: Answer(
            "Verified",
            schema={
                "type": "object",
                "required": ["user"],
                "properties": {"user": {"$ref": "#/components/schemas/User"}},
            },
        ),
        400: error("invalid_token for an unknown, used, expired, superseded or malformed token, or another account's"),
        409: error(
            "email_taken: another account verified this address first (this account's email is then null); "
            "conflict: the address kept changing under the request, try again"
        ),
    },
)


RESEND_VERIFICATION = Route(
    "POST",
    "/api/email/verify/resend",
    "Email a new verification link (the earlier ones stop working)",
    "email",
    description=(
        "At most 3 an hour per account, counted atomically (parallel requests cannot exceed it). The email is "
        "sent by the mail worker."
    ),
    answers={
        202: Answer(
            "Accepted",
            schema={
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"type": "string", "enum": ["accepted"]}},
            },
        ),
        409: error(
            "already_verified: the address is verified already; no_email: another account verified this "
            "account's address first, so it has none"
        ),
        429: error("too_many_requests: more than 3 in an hour"),
    },
)


REQUEST_UPLOAD = Route(
    "POST",
    "/api/upload",
    "Ask for a presigned S3 POST for one .txt or .docx file (after a successful payment)",
    "files",
    description=(
        "Creates a File in `pending_upload` and answers an S3 presigned POST. Send a multipart form to "
        "`upload.url` with every `upload.fields` pair first and the bytes last as `file`; S3 answers 204. The "
        "signed policy pins the object key (the service's own, never the filename), the size range "
        "1..`max_bytes` and the Content-Type (`text/plain` or the .docx MIME type: the request's `content_type`"
        " is advisory). S3 then notifies the worker, which checks the object again and counts its words."
    ),
    body=Body(
        required={
            "filename": Text(
                max_length=1020,
                description=(
                    "Shown back to its owner only: path parts and control characters are removed, at most 255 "
                    "characters kept. Its extension must be .txt or .docx."
                ),
            ),
            "size": Integer(
                minimum=1, description="Declared size in bytes; at most the configured limit (10 MiB by default)."
            ),
        },
        optional={"content_type": Text(max_length=255, blank=True, description="Advisory only.")},
    ),
    refused=(
        Refusal("validation_error", ("filename",), "a filename with no printable characters"),
        Refusal("unsupported_file_type", why="an extension other than .txt or .docx"),
        Refusal("file_too_large", why="a size past the limit"),
    ),
    answers={
        201: Answer(
            "The file record and how to upload it",
            schema={
                "type": "object",
                "properties": {
                    "file": {"$ref": "#/components/schemas/File"},
                    "upload": {"$ref": "#/components/schemas/PresignedPost"},
                },
            },
        ),
        400: error("`validation_error`, `unsupported_file_type` or `file_too_large`"),
        402: error("`payment_required`: no successful payment yet"),
        403: error(
            "`quota_exceeded`: the caller already holds `MAX_FILES_PER_USER` files that are not deleted, or"
            ' this declared size would take their sizes past `MAX_BYTES_PER_USER`; `details` = `{"limit": '
            '"max_files" | "max_bytes", "max", "used"}`'
        ),
        429: error(
            "`too_many_requests`: more than `UPLOAD_REQUESTS_PER_MINUTE` (30) upload requests in a minute, "
            "refused ones included"
        ),
    },
)


MY_FILES = _own_list("/api/files", "The caller's own files, newest first", "files", "FilePage")


MY_FILE = Route(
    "GET",
    "/api/files/{file_id}",
    "One of the caller's files, with a short-lived download link once its object is stored",
    "files",
    answers={
        200: Answer("File", schema="FileWithDownload"),
        404: error("`not_found`: unknown, or another user's file"),
    },
)


DELETE_MY_FILE = Route(
    "DELETE",
    "/api/files/{file_id}",
    "Delete one of the caller's files",
    "files",
    description=(
        "Deletes every stored version of the file's object. The record stays, as `deleted`, for staff; from "
        "then on its owner gets `404` for it and no longer lists it. An upload that arrives later through the "
        "file's presigned POST is deleted too."
    ),
    answers={
        204: Answer("Deleted"),
        404: error("`not_found`: unknown, another user's, or already deleted"),
        409: error("`file_busy`: the file is being processed; delete it once it is done"),
    },
)


DELETE_ME = Route(
    "DELETE",
    "/api/me",
    "Delete the caller's account",
    "leaving",
    description=(
        "Every session ends; every file becomes `deleted` and every stored version of its object is removed; "
        "payments stay for the accounts without username or email (staff lists show `username: null`); activity"
        " entries stay without personal values; the username and email can be registered again; the `users` "
        "statistic drops. Refused while a payment is open with the gateway or a file is `processing`. The order"
        ' and its safety: docs/accounts.md, "Leaving".'
    ),
    body=Body(required={"password": Text(description="the account's password, checked and counted like a login")}),
    answers={
        204: Answer("The account is deleted"),
        401: error(
            "invalid_credentials for a wrong password; invalid_token without a valid session (also the "
            "loser of two parallel deletions)"
        ),
        409: error(
            "account_busy: a payment is still open with the gateway (initiated, or failed/cancelled and "
            "still re-checked) or waits in review, or a file is processing; nothing was deleted"
        ),
        429: error("too_many_attempts"),
    },
)


EXPORT_ME = Route(
    "GET",
    "/api/me/export",
    "Everything held about the caller, as one JSON download",
    "leaving",
    description=(
        "Complete, not paged: each list newest first, items in the shapes of their list endpoints (files "
        "include deleted ones). Sent with `Content-Disposition: attachment`."
    ),
    answers={
        200: Answer("The caller's data", schema="Export"),
        413: error("data_too_large: more than 5 MB, more than one response can carry"),
    },
)


MFA_SETUP = Route(
    "POST",
    "/api/mfa/setup",
    "Start enrolling a TOTP second factor",
    "mfa",
    description=(
        "A new base32 secret (160 bits; SHA-1, 6 digits, 30 s steps), its otpauth:// URI (naming the issuer and"
        " the username) and that URI as a QR code, an inline SVG element for the dashboard to insert as a node."
        " Nothing changes until `/api/mfa/confirm/`; a new setup replaces an unconfirmed one. Refused once the "
        "factor is on: turn it off first."
    ),
    answers={
        200: Answer(
            "The pending secret",
            schema={
                "type": "object",
                "required": ["secret", "otpauth_uri", "qr_svg"],
                "properties": {
                    "secret": {"type": "string", "description": "base32, no padding"},
                    "otpauth_uri": {"type": "string"},
                    "qr_svg": {"type": "string", "description": "an <svg> element (SVG namespace, no inline style)"},
                },
            },
        ),
        409: error("mfa_already_enabled: turn the factor off first"),
    },
)


MFA_CONFIRM = Route(
    "POST",
    "/api/mfa/confirm",
    "Turn the second factor on with a code of the pending secret",
    "mfa",
    description=(
        "Answers the ten recovery codes (shown once; only their SHA-256 is stored) and fresh tokens for this "
        "session, marked as having passed the second factor: this session has just proved it. Every other "
        "session of the account ends (the token epoch moves). Activity `mfa_enabled`."
    ),
    body=Body(required={"code": CODE}),
    refused=(Refusal("invalid_code", why="a wrong or expired code, or no setup started"),),
    answers={
        200: Answer(
            "Recovery codes and this session's fresh tokens",
            schema={
                "allOf": [
                    {"$ref": "#/components/schemas/Tokens"},
                    {
                        "type": "object",
                        "required": ["recovery_codes"],
                        "properties": {
                            "recovery_codes": {
                                "type": "array",
                                "minItems": 10,
                                "maxItems": 10,
                                "items": {"type": "string"},
                            }
                        },
                    },
                ]
            },
        ),
        400: error("invalid_code: wrong or expired code, or no setup started; validation_error"),
        409: error("mfa_already_enabled"),
    },
)


LOGIN_SECOND_FACTOR = Route(
    "POST",
    "/api/login/mfa",
    "The code step of log-in: exchange the mfa_token and a code for tokens",
    "mfa",
    description=(
        "The `mfa_token` comes from `POST /api/login/` (5 minutes, one session). A TOTP code is accepted once "
        "(only a later time step than the last accepted one) and a recovery code once, also under parallel "
        "requests. Every attempt is counted before the code is checked; after 5 wrong codes the mfa_token is "
        "dead. The tokens carry `mfa: true`, kept through refresh; staff routes ask for it."
    ),
    auth=False,
    body=Body(required={"mfa_token": Text(max_length=4096), "code": CODE}),
    answers={
        200: Answer("Tokens of a session that passed the second factor", schema="Tokens"),
        400: error("validation_error"),
        401: error(
            "invalid_code: wrong, expired or already used code; invalid_token: the mfa_token is unknown, "
            "tampered, expired, used, or dead after 5 wrong codes"
        ),
    },
)


MFA_DISABLE = Route(
    "POST",
    "/api/mfa/disable",
    "Turn the second factor off",
    "mfa",
    description=(
        "Needs the password and a current code (or a recovery code); both count toward the login lockout. "
        "Sessions stay, but staff routes answer 403 mfa_required until the factor is on again and the session "
        "passed it. Activity `mfa_disabled`."
    ),
    body=Body(required={"password": Text(), "code": CODE}),
    answers={
        204: Answer("The factor is off"),
        401: error("invalid_credentials for a wrong password; invalid_code for a wrong or used code"),
        409: error("mfa_not_enabled"),
        429: error("too_many_attempts"),
    },
)


# --- passkeys (WebAuthn): docs/accounts.md, "Passkeys" ------------------------------------

CREDENTIAL = Object(description="The browser's `PublicKeyCredential` as JSON (`toJSON()`: base64url byte fields)")
NOT_FRESH = error(
    "`reauthentication_required`: the session proved a password, a code or a passkey more than 10 minutes ago, "
    "or it is a staff session that did not pass the account's second factor; log in again"
)
TOO_MANY_PASSKEYS = error("`too_many_passkeys`: 10 already; remove one first")

PASSKEY_REGISTRATION_OPTIONS = Route(
    "POST",
    "/api/passkeys/register/options",
    "Start registering a passkey: WebAuthn creation options",
    "passkeys",
    description=(
        "A challenge good for one registration by this account within 5 minutes; `rp.id` the host of "
        "`PUBLIC_BASE_URL`; `user.id` the account id; the account's passkeys in `excludeCredentials`; "
        "attestation `none`; a discoverable credential and user verification required. Needs a fresh session."
    ),
    answers={200: Answer("Creation options", schema="WebAuthnOptions"), 403: NOT_FRESH, 409: TOO_MANY_PASSKEYS},
)


ADD_PASSKEY = Route(
    "POST",
    "/api/passkeys",
    "Register a passkey",
    "passkeys",
    description=(
        "Verified by py_webauthn (its challenge unused and issued to this account, the origin, the rp id, user "
        "presence and verification); its public key, sign count and transports are stored under the name. "
        "Needs a fresh session. Activity `passkey_added`."
    ),
    body=Body(required={"credential": CREDENTIAL, "name": Text(max_length=64)}),
    refused=(
        Refusal(
            "invalid_credential",
            why="a credential that does not verify, a used or expired challenge, or one registered already",
        ),
    ),
    answers={
        201: Answer("The passkey", schema="Passkey"),
        400: error("`invalid_credential`; `validation_error` for the name"),
        403: NOT_FRESH,
        409: TOO_MANY_PASSKEYS,
    },
)


MY_PASSKEYS = _own_list("/api/passkeys", "The caller's passkeys, newest first", "passkeys", "PasskeyPage")


REMOVE_PASSKEY = Route(
    "DELETE",
    "/api/passkeys/{passkey_id}",
    "Remove one of the caller's passkeys",
    "passkeys",
    description="Needs a fresh session. Activity `passkey_removed`.",
    answers={
        204: Answer("Removed"),
        403: NOT_FRESH,
        404: error("`not_found`: unknown, or another user's passkey"),
    },
)


PASSKEY_LOGIN_OPTIONS = Route(
    "POST",
    "/api/login/passkey/options",
    "Start signing in with a passkey: WebAuthn request options",
    "passkeys",
    description=(
        "A challenge good for one sign-in within 5 minutes, user verification required. With a username its "
        "passkeys are listed (and the challenge is bound to it); without, discoverable credentials. The same "
        "shape whether or not the name exists or has passkeys."
    ),
    auth=False,
    body=Body(optional={"username": Text(max_length=254, blank=True)}, may_be_empty=True),
    answers={200: Answer("Request options", schema="WebAuthnOptions")},
)


LOGIN_WITH_PASSKEY = Route(
    "POST",
    "/api/login/passkey",
    "Sign in with a passkey",
    "passkeys",
    description=(
        "The session counts as having passed a second factor: staff reach the admin routes with it. Activity "
        '`login` with `"method": "passkey"`; a refusal writes `login_failed`, and a sign count that went back '
        "is logged as a security event."
    ),
    auth=False,
    body=Body(required={"credential": CREDENTIAL}),
    refused=(Refusal("invalid_credentials", why="any assertion that does not verify"),),
    answers={
        200: Answer("Tokens of a session that passed the second factor", schema="Tokens"),
        401: error(
            "`invalid_credentials`: an unknown, removed, replayed or wrong-origin assertion, an expired "
            "challenge, or a sign count that went back"
        ),
    },
)

INITIATE_PAYMENT = Route(
    "POST",
    "/api/initiate-payment",
    "Start the one-time payment: creates the record, answers the aamarPay page to send the browser to",
    "payments",
    description=(
        "The customer's name and email come from the account, never from the request. With an Idempotency-Key, "
        "a retry answers what the first request answered (the same payment, in its current state; the same "
        "502/504 if the gateway failed; 409 idempotency_key_in_use while the first request is still running). "
        "On 504 the payment stays `initiated`: the gateway may have created it, and the reconciler settles or "
        "expires it."
    ),
    headers={
        "Idempotency-Key": Param(
            Text(
                max_length=128,
                pattern=IDEMPOTENCY_KEY,
                description="1 to 128 printable ASCII characters, unique per intended payment (per user).",
            )
        )
    },
    body=Body(
        optional={
            "cus_phone": Text(max_length=32, blank=True, description="Digits, spaces, +, - and parentheses (3 to 32)."),
            "cus_add1": Text(max_length=200, blank=True),
            "cus_city": Text(max_length=100, blank=True),
            "cus_country": Text(max_length=100, blank=True),
            "cus_name": IGNORED_IDENTITY,
            "cus_email": IGNORED_IDENTITY,
        },
        may_be_empty=True,
    ),
    refused=(Refusal("validation_error", ("cus_phone",), "a phone number of other characters"),),
    answers={
        201: Answer("Payment created; send the browser to payment_url", schema="PaymentInitiated"),
        409: error(
            "already_paid, payment_in_review (a payment waits in review), idempotency_key_in_use, or conflict "
            "(another request met this one; retry)"
        ),
        422: error("idempotency_key_reused: this Idempotency-Key came with a different request body before"),
        429: error(
            "too_many_payments: 5 payments are `initiated` already; finish or cancel one, or wait until they expire"
        ),
        502: error(
            "gateway_error: the gateway refused or answered nonsense (the message says why); the payment is `failed`"
        ),
        504: error("gateway_timeout; the payment stays `initiated` until the reconciler settles or expires it"),
    },
)


PAYMENT_SUCCESS = Route(
    "POST",
    "/api/payment/success",
    "aamarPay's browser return after payment (a hint: settled only after the search-API check)",
    "payments",
    description=(
        "The form only names the payment (mer_txnid). The payment becomes `success` only when aamarPay's search"
        " API reports a success matching our id, store, amount and currency. Otherwise nothing changes, the "
        "attempt is logged as payment_callback_rejected, and the answer is 400 invalid_callback / "
        "payment=invalid. When the gateway cannot be asked, nothing changes and the current state is answered "
        "(the reconciler re-checks within minutes). The gateway is asked about a payment at most once per 10 s,"
        " whatever arrives; inside that window the stored state is answered."
    ),
    auth=False,
    headers=ACCEPT,
    form="GatewayReturnForm",
    refused=(RETURN_REFUSED,),
    answers={
        200: Answer("With Accept: application/json", schema="ReturnAnswer"),
        303: Answer("To /dashboard/?payment=<status or invalid>&transaction_id=<id>", redirect=True),
        400: error(
            "invalid_callback (unknown transaction or not confirmed by the gateway), with Accept: application/json"
        ),
    },
)


PAYMENT_FAIL = Route(
    "POST",
    "/api/payment/fail",
    "aamarPay's browser return after a failed payment",
    "payments",
    description=(
        "Moves an `initiated` payment to `failed` only when the search API reports it failed; a "
        "gateway-confirmed success wins (becomes `success`). Never downgrades a success. The gateway is asked "
        "about a payment at most once per 10 s, whatever arrives; inside that window the stored state is "
        "answered."
    ),
    auth=False,
    headers=ACCEPT,
    form="GatewayReturnForm",
    refused=(RETURN_REFUSED,),
    answers={
        200: Answer("With Accept: application/json", schema="ReturnAnswer"),
        303: Answer("To /dashboard/?payment=<status or invalid>&transaction_id=<id>", redirect=True),
        400: error("invalid_callback, with Accept: application/json"),
    },
)


PAYMENT_CANCEL = Route(
    "GET",
    "/api/payment/cancel",
    "aamarPay's cancel link back (GET or POST)",
    "payments",
    description=(
        "Moves an `initiated` payment to `cancelled`, unless the search API reports it paid (then `success`: money "
        "taken is never lost). Never downgrades a success. The link we hand the gateway carries an unguessable "
        "`token`; a cancel without it (someone who knows only the id) changes nothing and is answered like an "
        "unknown transaction. The gateway is asked about a payment at most once per 10 s, whatever arrives; inside "
        "that window the stored state is answered. aamarPay's samples send the customer back by GET or by POST; both "
        "are answered alike (a POST body is ignored: the token is in the URL)."
    ),
    auth=False,
    headers=ACCEPT,
    query={
        "transaction_id": Param(Text(max_length=None, blank=True)),
        "token": Param(
            Text(
                max_length=None,
                blank=True,
                description="The token of the cancel URL handed to the gateway (256 random bits, stored hashed).",
            )
        ),
    },
    refused=(RETURN_REFUSED,),
    answers={
        200: Answer("With Accept: application/json", schema="ReturnAnswer"),
        303: Answer("To /dashboard/?payment=<status or invalid>&transaction_id=<id>", redirect=True),
        400: error("invalid_callback, with Accept: application/json"),
    },
)
PAYMENT_CANCEL_POST = replace(PAYMENT_CANCEL, method="POST")


MY_TRANSACTIONS = _own_list("/api/transactions", "The caller's own payments, newest first", "payments", "PaymentPage")


MY_TRANSACTION = Route(
    "GET",
    "/api/transactions/{transaction_id}",
    (
        "One of the caller's payments; one not yet `success` is re-checked with the gateway (at most every 30 s"
        " per payment)"
    ),
    "payments",
    description=(
        "A payment not yet `success` is re-checked with the gateway at most every 30 s (and never within 10 s "
        "of any other check)."
    ),
    answers={
        200: Answer("Payment", schema="Payment"),
        404: error(),
    },
)

"""Routes and event handlers: parse the request, call one domain function, shape the answer.

API Gateway drops a trailing slash before matching, so routes are declared without one: the
contract's `/api/me/` and `/api/me` reach the same handler. Everything else lives in
`chalicelib/`: accounts, payments, uploads, worker, admin.
"""

from __future__ import annotations

from chalicelib.core import coldstart

coldstart.pause_collector()  # before any other import (cold start: chalicelib/core/coldstart.py)

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Rate
from chalice.app import DynamoDBEvent, Response, SQSEvent

from chalicelib.core import batches, web
from chalicelib.core.config import settings
from chalicelib.core.imports import Lazy
from chalicelib.core.observability import event_middleware
from chalicelib.openapi import routes

if TYPE_CHECKING:  # mypy checks every call from a route into the domain against the modules...
    from chalicelib import payments
    from chalicelib.accounts import accounts, mfa, passkey_login, passkeys, recovery, verification
    from chalicelib.accounts.accounts import Principal
    from chalicelib.core import activity, health, pagination
    from chalicelib.dashboard import assets as dashboard
    from chalicelib.files import expiry, quota, uploads, worker
    from chalicelib.leaving import deletion as leaving
    from chalicelib.leaving import export
    from chalicelib.mail import delivery, jobs
    from chalicelib.openapi import document as openapi
    from chalicelib.payments import receipts
    from chalicelib.staff import admin

    StaffLister = Callable[[Principal, dict[str, str], int, str | None], dict[str, Any]]
else:  # ...that are imported by the first route that uses them (cold start: bench/bench_coldstart.py)
    accounts = Lazy("chalicelib.accounts.accounts")
    activity = Lazy("chalicelib.core.activity")
    admin = Lazy("chalicelib.staff.admin")
    delivery = Lazy("chalicelib.mail.delivery")
    dashboard = Lazy("chalicelib.dashboard.assets")
    expiry = Lazy("chalicelib.files.expiry")
    export = Lazy("chalicelib.leaving.export")
    leaving = Lazy("chalicelib.leaving.deletion")
    health = Lazy("chalicelib.core.health")
    jobs = Lazy("chalicelib.mail.jobs")
    mfa = Lazy("chalicelib.accounts.mfa")
    passkey_login = Lazy("chalicelib.accounts.passkey_login")
    passkeys = Lazy("chalicelib.accounts.passkeys")
    openapi = Lazy("chalicelib.openapi.document")
    pagination = Lazy("chalicelib.core.pagination")
    receipts = Lazy("chalicelib.payments.receipts")
    recovery = Lazy("chalicelib.accounts.recovery")
    payments = Lazy("chalicelib.payments")
    quota = Lazy("chalicelib.files.quota")
    uploads = Lazy("chalicelib.files.uploads")
    verification = Lazy("chalicelib.accounts.verification")
    worker = Lazy("chalicelib.files.worker")

app = web.App(app_name="paidupload")
app.register_middleware(web.request_context_middleware, "http")
app.register_middleware(event_middleware, "sqs")
app.register_middleware(event_middleware, "dynamodb")
app.register_middleware(event_middleware, "scheduled")


def _request() -> Any:
    return app.current_request


def _caller() -> Principal:
    return accounts.authenticate(web.bearer_token(_request()))


def _paging() -> tuple[int, str | None]:
    params = web.query(_request())
    return pagination.parse_limit(params.get("limit")), params.get("cursor") or None


# --- health and docs -------------------------------------------------------------------


@app.serve(routes.HEALTH_CHECK)
def health_check() -> Response:
    return web.json_response(health.check())


@app.serve(routes.OPENAPI_DOCUMENT)
def openapi_document() -> Response:
    return web.json_response(openapi.document(web.public_base_url(_request()), app.declarations))


# --- accounts --------------------------------------------------------------------------


@app.serve(routes.REGISTER)
def register() -> Response:
    request = _request()
    user = accounts.register(web.json_body(request), base_url=web.public_base_url(request))
    return web.json_response({"user": accounts.user_view(user)}, 201)


@app.serve(routes.LOGIN)
def login() -> Response:
    return web.json_response(accounts.login(web.json_body(_request()), client_ip=_client_ip()))


def _client_ip() -> str:
    """The caller's address as API Gateway saw it (never a client-supplied header)."""
    return str(((_request().context or {}).get("identity") or {}).get("sourceIp") or "")


@app.serve(routes.LOGIN_SECOND_FACTOR)
def login_second_factor() -> Response:
    return web.json_response(mfa.complete_login(web.json_body(_request())))


@app.serve(routes.MFA_SETUP)
def mfa_setup() -> Response:
    return web.json_response(mfa.setup(_caller()))


@app.serve(routes.MFA_CONFIRM)
def mfa_confirm() -> Response:
    return web.json_response(mfa.confirm(_caller(), web.json_body(_request())))


@app.serve(routes.MFA_DISABLE)
def mfa_disable() -> Response:
    mfa.disable(_caller(), web.json_body(_request()))
    return web.no_content()


@app.serve(routes.PASSKEY_REGISTRATION_OPTIONS)
def passkey_registration_options() -> Response:
    return web.json_response(passkeys.registration_options(_caller(), base_url=web.public_base_url(_request())))


@app.serve(routes.ADD_PASSKEY)
def add_passkey() -> Response:
    request = _request()
    passkey = passkeys.register(_caller(), web.json_body(request), base_url=web.public_base_url(request))
    return web.json_response(passkey, 201)


@app.serve(routes.MY_PASSKEYS)
def my_passkeys() -> Response:
    page = passkeys.list_for_user(_caller().user_id, *_paging())
    return web.json_response(page.render(passkeys.view))


@app.serve(routes.REMOVE_PASSKEY)
def remove_passkey(passkey_id: str) -> Response:
    passkeys.remove(_caller(), passkey_id)
    return web.no_content()


@app.serve(routes.PASSKEY_LOGIN_OPTIONS)
def passkey_login_options() -> Response:
    request = _request()
    return web.json_response(
        passkey_login.options(web.json_body(request, optional=True), base_url=web.public_base_url(request))
    )


@app.serve(routes.LOGIN_WITH_PASSKEY)
def login_with_passkey() -> Response:
    request = _request()
    return web.json_response(
        passkey_login.complete_login(web.json_body(request), base_url=web.public_base_url(request))
    )


@app.serve(routes.REFRESH)
def refresh() -> Response:
    return web.json_response(accounts.refresh(web.json_body(_request())))


@app.serve(routes.LOGOUT)
def logout() -> Response:
    accounts.logout(_caller(), web.json_body(_request(), optional=True))
    return web.no_content()


@app.serve(routes.CHANGE_PASSWORD)
def change_password() -> Response:
    return web.json_response(accounts.change_password(_caller(), web.json_body(_request())))


@app.serve(routes.FORGOT_PASSWORD)
def forgot_password() -> Response:
    request = _request()
    recovery.forgot(web.json_body(request), base_url=web.public_base_url(request))
    return web.json_response({"status": "accepted"}, 202)


@app.serve(routes.RESET_PASSWORD)
def reset_password() -> Response:
    return web.json_response(recovery.reset(web.json_body(_request())))


@app.serve(routes.VERIFY_EMAIL)
def verify_email() -> Response:
    return web.json_response({"user": accounts.user_view(verification.verify(web.json_body(_request())))})


@app.serve(routes.RESEND_VERIFICATION)
def resend_verification() -> Response:
    verification.resend(_caller(), base_url=web.public_base_url(_request()))
    return web.json_response({"status": "accepted"}, 202)


@app.serve(routes.ME)
def me() -> Response:
    user = _caller().user
    return web.json_response({"user": accounts.user_view(user), "usage": quota.usage_view(user)})


@app.serve(routes.DELETE_ME)
def delete_me() -> Response:
    leaving.delete_account(_caller(), web.json_body(_request()))
    return web.no_content()


@app.serve(routes.EXPORT_ME)
def export_me() -> Response:
    return web.json_download(export.export(_caller()), export.filename())


@app.serve(routes.MY_ACTIVITY)
def my_activity() -> Response:
    page = activity.list_for_user(_caller().user_id, *_paging())
    return web.json_response(page.render(activity.view))


# --- payments --------------------------------------------------------------------------


@app.serve(routes.INITIATE_PAYMENT)
def initiate_payment() -> Response:
    request = _request()
    payment = payments.initiate(
        _caller(),
        web.json_body(request, optional=True),
        idempotency_key=request.headers.get("idempotency-key"),
        base_url=web.public_base_url(request),
    )
    return web.json_response(payment, 201)


def _gateway_return(kind: str, form: dict[str, str]) -> Response:
    request = _request()
    outcome = payments.handle_return(kind, form)
    if web.wants_json(request):
        if not outcome.valid:
            return web.json_response(web.error_body("invalid_callback", outcome.message), 400)
        return web.json_response({"transaction_id": outcome.transaction_id, "status": outcome.status})
    return web.redirect(outcome.dashboard_url(web.public_base_url(request)))


@app.serve(routes.PAYMENT_SUCCESS)
def payment_success() -> Response:
    return _gateway_return("success", web.form_body(_request()))


@app.serve(routes.PAYMENT_FAIL)
def payment_fail() -> Response:
    return _gateway_return("fail", web.form_body(_request()))


@app.serve(routes.PAYMENT_CANCEL, routes.PAYMENT_CANCEL_POST)
def payment_cancel() -> Response:
    """GET or POST (aamarPay's samples disagree); the token is in the URL we handed out, either way."""
    return _gateway_return("cancel", web.query(_request()))


@app.serve(routes.MY_TRANSACTIONS)
def my_transactions() -> Response:
    page = payments.list_for_user(_caller().user_id, *_paging())
    return web.json_response(page.render(payments.payment_view))


@app.serve(routes.MY_TRANSACTION)
def my_transaction(transaction_id: str) -> Response:
    return web.json_response(payments.get_for_user(_caller().user_id, transaction_id))


# --- files -----------------------------------------------------------------------------


@app.serve(routes.REQUEST_UPLOAD)
def request_upload() -> Response:
    return web.json_response(uploads.request_upload(_caller(), web.json_body(_request())), 201)


@app.serve(routes.MY_FILES)
def my_files() -> Response:
    page = uploads.list_for_user(_caller().user_id, *_paging())
    return web.json_response(page.render(uploads.file_view))


@app.serve(routes.MY_FILE)
def my_file(file_id: str) -> Response:
    return web.json_response(uploads.get_for_user(_caller().user_id, file_id))


@app.serve(routes.DELETE_MY_FILE)
def delete_my_file(file_id: str) -> Response:
    uploads.delete_for_user(_caller().user_id, file_id)
    return web.no_content()


# --- admin -----------------------------------------------------------------------------


def _staff_list(lister: StaffLister) -> Response:
    caller = admin.require_staff(_caller())
    return web.json_response(lister(caller, web.query(_request()), *_paging()))


@app.serve(routes.ADMIN_USERS)
def admin_users() -> Response:
    return _staff_list(admin.list_users)


@app.serve(routes.ADMIN_USER)
def admin_user(user_id: str) -> Response:
    return web.json_response(admin.get_user(admin.require_staff(_caller()), user_id))


@app.serve(routes.ADMIN_TRANSACTIONS)
def admin_transactions() -> Response:
    return _staff_list(admin.list_payments)


@app.serve(routes.ADMIN_EXPORT)
def admin_export() -> Response:
    body, filename = admin.export_payments(admin.require_staff(_caller()), web.query(_request()))
    return web.csv_response(body, filename)


@app.serve(routes.ADMIN_FILES)
def admin_files() -> Response:
    return _staff_list(admin.list_files)


@app.serve(routes.ADMIN_ACTIVITY)
def admin_activity() -> Response:
    return _staff_list(admin.list_activity)


@app.serve(routes.ADMIN_STATS)
def admin_stats() -> Response:
    admin.require_staff(_caller())
    return web.json_response(admin.stats_view())


@app.serve(routes.ADMIN_DAILY_STATS)
def admin_daily_stats() -> Response:
    admin.require_staff(_caller())
    return web.json_response(admin.daily_view(web.query(_request())))


@app.serve(routes.ADMIN_REPROCESS)
def admin_reprocess(file_id: str) -> Response:
    caller = admin.require_superuser(_caller())
    return web.json_response(admin.reprocess_file(caller, file_id), 202)


@app.serve(routes.ADMIN_VERIFY)
def admin_verify(transaction_id: str) -> Response:
    caller = admin.require_superuser(_caller())
    return web.json_response(admin.verify_payment(caller, transaction_id))


@app.serve(routes.ADMIN_APPROVE)
def admin_approve(transaction_id: str) -> Response:
    caller = admin.require_superuser(_caller())
    return web.json_response(admin.approve_payment(caller, transaction_id))


@app.serve(routes.ADMIN_REJECT)
def admin_reject(transaction_id: str) -> Response:
    caller = admin.require_superuser(_caller())
    return web.json_response(admin.reject_payment(caller, transaction_id, web.json_body(_request(), optional=True)))


@app.serve(routes.ADMIN_SET_STAFF)
def admin_set_staff(user_id: str) -> Response:
    caller, request = admin.require_superuser(_caller()), _request()
    user = admin.set_staff(caller, user_id, web.json_body(request), base_url=web.public_base_url(request))
    return web.json_response({"user": accounts.user_view(user)})


# --- dashboard -------------------------------------------------------------------------


@app.route("/", methods=["GET"])
def root() -> Response:
    return web.redirect("dashboard/", status=302)


@app.serve(routes.DASHBOARD_PAGE)
def dashboard_page() -> Response:
    if not web.ends_with_slash(_request()):  # relative asset URLs need `/dashboard/`
        return web.redirect("dashboard/", status=302)
    return web.static_response(*dashboard.asset("index.html"))


@app.route("/dashboard/{asset}", methods=["GET"])
def dashboard_asset(asset: str) -> Response:
    return web.static_response(*dashboard.asset(asset))


# --- background work -------------------------------------------------------------------


def _batched(queue: str) -> Any:
    """An SQS handler taking batches, as configured, with partial batch responses (the
    template turns on ReportBatchItemFailures for each of them)."""
    config = settings()
    return app.on_sqs_message(
        queue=queue,
        batch_size=config.queue_batch_size,
        maximum_batching_window_in_seconds=config.queue_batch_window_seconds,
        maximum_concurrency=batches.MAXIMUM_CONCURRENCY,
    )


@_batched(settings().upload_queue)
def process_upload_events(event: SQSEvent) -> dict[str, Any]:
    return batches.each_record((record.to_dict() for record in event), worker.handle_records)


@_batched(settings().upload_dead_letter_queue)
def process_dead_upload_events(event: SQSEvent) -> dict[str, Any]:
    return batches.each_record((record.to_dict() for record in event), worker.handle_dead_letters)


@_batched(settings().mail_queue)
def send_mail(event: SQSEvent) -> dict[str, Any]:
    handlers: dict[str, delivery.Handler] = {
        "forgot": recovery.forgot_mails,
        "password_changed": recovery.password_changed_mails,
        "receipt": receipts.receipt_mails,
        "mfa_enrol": mfa.enrol_mails,
        "verify": verification.verify_mails,
    }
    return batches.each_record(
        (record.to_dict() for record in event), lambda records: delivery.handle_records(records, handlers)
    )


# Replaced in the template by the outbox table's own stream (infra/template.py); the local
# runner reads that table's stream whatever this says.
OUTBOX_STREAM = f"arn:aws:dynamodb:::table/{settings().resource_name('outbox')}/stream/*"


@app.on_dynamodb_record(
    stream_arn=OUTBOX_STREAM,
    batch_size=settings().queue_batch_size,
    starting_position="TRIM_HORIZON",
    maximum_batching_window_in_seconds=settings().queue_batch_window_seconds,
)
def relay_mail(event: DynamoDBEvent) -> dict[str, Any]:
    return jobs.relay(event.to_dict()["Records"])


@app.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile_payments(event: Any) -> None:
    payments.reconcile_pending()


@app.schedule(Rate(1, unit=Rate.HOURS))
def expire_uploads(event: Any) -> None:
    expiry.expire_stale_uploads()

"""Routes and event handlers: parse the request, call one domain function, shape the answer.

API Gateway drops a trailing slash before matching, so routes are declared without one: the
contract's `/api/me/` and `/api/me` reach the same handler. Everything else lives in
`chalicelib/`: accounts, payments, uploads, worker, admin.
"""

from __future__ import annotations

from chalicelib.core import coldstart

coldstart.pause_collector()  # before any other import (cold start: chalicelib/core/coldstart.py)

from typing import TYPE_CHECKING, Any

from chalice import Rate
from chalice.app import Response, SQSEvent

from chalicelib.core import batches, web
from chalicelib.core.config import settings
from chalicelib.core.imports import Lazy
from chalicelib.core.observability import event_middleware

if TYPE_CHECKING:
    from chalicelib.accounts.accounts import Principal

# Imported by the first route that uses them (cold start: bench/bench_coldstart.py).
accounts = Lazy("chalicelib.accounts.accounts")
activity = Lazy("chalicelib.core.activity")
admin = Lazy("chalicelib.staff.admin")
delivery = Lazy("chalicelib.mail.delivery")
dashboard = Lazy("chalicelib.dashboard.assets")
expiry = Lazy("chalicelib.files.expiry")
export = Lazy("chalicelib.leaving.export")
leaving = Lazy("chalicelib.leaving.deletion")
health = Lazy("chalicelib.core.health")
mfa = Lazy("chalicelib.accounts.mfa")
openapi = Lazy("chalicelib.openapi")
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
app.register_middleware(event_middleware, "scheduled")
ANY = web.ANY_CONTENT_TYPE


def _request() -> Any:
    return app.current_request


def _caller() -> Principal:
    return accounts.authenticate(web.bearer_token(_request()))


def _paging() -> tuple[int, str | None]:
    params = web.query(_request())
    return pagination.parse_limit(params.get("limit")), params.get("cursor") or None


# --- health and docs -------------------------------------------------------------------


@app.route("/api/health", methods=["GET"])
def health_check() -> Response:
    return web.json_response(health.check())


@app.route("/api/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    return web.json_response(openapi.document(web.public_base_url(_request())))


# --- accounts --------------------------------------------------------------------------


@app.route("/api/register", methods=["POST"], content_types=ANY)
def register() -> Response:
    request = _request()
    user = accounts.register(web.json_body(request), base_url=web.public_base_url(request))
    return web.json_response({"user": accounts.user_view(user)}, 201)


@app.route("/api/login", methods=["POST"], content_types=ANY)
def login() -> Response:
    return web.json_response(accounts.login(web.json_body(_request()), client_ip=_client_ip()))


def _client_ip() -> str:
    """The caller's address as API Gateway saw it (never a client-supplied header)."""
    return str(((_request().context or {}).get("identity") or {}).get("sourceIp") or "")


@app.route("/api/login/mfa", methods=["POST"], content_types=ANY)
def login_second_factor() -> Response:
    return web.json_response(mfa.complete_login(web.json_body(_request())))


@app.route("/api/mfa/setup", methods=["POST"], content_types=ANY)
def mfa_setup() -> Response:
    return web.json_response(mfa.setup(_caller()))


@app.route("/api/mfa/confirm", methods=["POST"], content_types=ANY)
def mfa_confirm() -> Response:
    return web.json_response(mfa.confirm(_caller(), web.json_body(_request())))


@app.route("/api/mfa/disable", methods=["POST"], content_types=ANY)
def mfa_disable() -> Response:
    mfa.disable(_caller(), web.json_body(_request()))
    return web.no_content()


@app.route("/api/refresh", methods=["POST"], content_types=ANY)
def refresh() -> Response:
    return web.json_response(accounts.refresh(web.json_body(_request())))


@app.route("/api/logout", methods=["POST"], content_types=ANY)
def logout() -> Response:
    accounts.logout(_caller(), web.json_body(_request(), optional=True))
    return web.no_content()


@app.route("/api/password/change", methods=["POST"], content_types=ANY)
def change_password() -> Response:
    return web.json_response(accounts.change_password(_caller(), web.json_body(_request())))


@app.route("/api/password/forgot", methods=["POST"], content_types=ANY)
def forgot_password() -> Response:
    request = _request()
    recovery.forgot(web.json_body(request), base_url=web.public_base_url(request))
    return web.json_response({"status": "accepted"}, 202)


@app.route("/api/password/reset", methods=["POST"], content_types=ANY)
def reset_password() -> Response:
    return web.json_response(recovery.reset(web.json_body(_request())))


@app.route("/api/email/verify", methods=["POST"], content_types=ANY)
def verify_email() -> Response:
    return web.json_response({"user": accounts.user_view(verification.verify(web.json_body(_request())))})


@app.route("/api/email/verify/resend", methods=["POST"], content_types=ANY)
def resend_verification() -> Response:
    verification.resend(_caller(), base_url=web.public_base_url(_request()))
    return web.json_response({"status": "accepted"}, 202)


@app.route("/api/me", methods=["GET"])
def me() -> Response:
    user = _caller().user
    return web.json_response({"user": accounts.user_view(user), "usage": quota.usage_view(user)})


@app.route("/api/me", methods=["DELETE"], content_types=ANY)
def delete_me() -> Response:
    leaving.delete_account(_caller(), web.json_body(_request()))
    return web.no_content()


@app.route("/api/me/export", methods=["GET"])
def export_me() -> Response:
    return web.json_download(export.export(_caller()), export.filename())


@app.route("/api/activity", methods=["GET"])
def my_activity() -> Response:
    page = activity.list_for_user(_caller().user_id, *_paging())
    return web.json_response(page.render(activity.view))


# --- payments --------------------------------------------------------------------------


@app.route("/api/initiate-payment", methods=["POST"], content_types=ANY)
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


@app.route("/api/payment/success", methods=["POST"], content_types=ANY)
def payment_success() -> Response:
    return _gateway_return("success", web.form_body(_request()))


@app.route("/api/payment/fail", methods=["POST"], content_types=ANY)
def payment_fail() -> Response:
    return _gateway_return("fail", web.form_body(_request()))


@app.route("/api/payment/cancel", methods=["GET", "POST"], content_types=ANY)
def payment_cancel() -> Response:
    """GET or POST (aamarPay's samples disagree); the token is in the URL we handed out, either way."""
    return _gateway_return("cancel", web.query(_request()))


@app.route("/api/transactions", methods=["GET"])
def my_transactions() -> Response:
    page = payments.list_for_user(_caller().user_id, *_paging())
    return web.json_response(page.render(payments.payment_view))


@app.route("/api/transactions/{transaction_id}", methods=["GET"])
def my_transaction(transaction_id: str) -> Response:
    return web.json_response(payments.get_for_user(_caller().user_id, transaction_id))


# --- files -----------------------------------------------------------------------------


@app.route("/api/upload", methods=["POST"], content_types=ANY)
def request_upload() -> Response:
    return web.json_response(uploads.request_upload(_caller(), web.json_body(_request())), 201)


@app.route("/api/files", methods=["GET"])
def my_files() -> Response:
    page = uploads.list_for_user(_caller().user_id, *_paging())
    return web.json_response(page.render(uploads.file_view))


@app.route("/api/files/{file_id}", methods=["GET"])
def my_file(file_id: str) -> Response:
    return web.json_response(uploads.get_for_user(_caller().user_id, file_id))


@app.route("/api/files/{file_id}", methods=["DELETE"])
def delete_my_file(file_id: str) -> Response:
    uploads.delete_for_user(_caller().user_id, file_id)
    return web.no_content()


# --- admin -----------------------------------------------------------------------------


def _staff_list(lister: Any) -> Response:
    caller = admin.require_staff(_caller())
    return web.json_response(lister(caller, web.query(_request()), *_paging()))


@app.route("/api/admin/users", methods=["GET"])
def admin_users() -> Response:
    return _staff_list(admin.list_users)


@app.route("/api/admin/users/{user_id}", methods=["GET"])
def admin_user(user_id: str) -> Response:
    return web.json_response(admin.get_user(admin.require_staff(_caller()), user_id))


@app.route("/api/admin/transactions", methods=["GET"])
def admin_transactions() -> Response:
    return _staff_list(admin.list_payments)


@app.route("/api/admin/transactions/export", methods=["GET"])
def admin_export() -> Response:
    body, filename = admin.export_payments(admin.require_staff(_caller()), web.query(_request()))
    return web.csv_response(body, filename)


@app.route("/api/admin/files", methods=["GET"])
def admin_files() -> Response:
    return _staff_list(admin.list_files)


@app.route("/api/admin/activity", methods=["GET"])
def admin_activity() -> Response:
    return _staff_list(admin.list_activity)


@app.route("/api/admin/stats", methods=["GET"])
def admin_stats() -> Response:
    admin.require_staff(_caller())
    return web.json_response(admin.stats_view())


@app.route("/api/admin/stats/daily", methods=["GET"])
def admin_daily_stats() -> Response:
    admin.require_staff(_caller())
    return web.json_response(admin.daily_view(web.query(_request())))


@app.route("/api/admin/files/{file_id}/reprocess", methods=["POST"], content_types=ANY)
def admin_reprocess(file_id: str) -> Response:
    caller = admin.require_superuser(_caller())
    return web.json_response(admin.reprocess_file(caller, file_id), 202)


@app.route("/api/admin/transactions/{transaction_id}/verify", methods=["POST"], content_types=ANY)
def admin_verify(transaction_id: str) -> Response:
    caller = admin.require_superuser(_caller())
    return web.json_response(admin.verify_payment(caller, transaction_id))


@app.route("/api/admin/transactions/{transaction_id}/approve", methods=["POST"], content_types=ANY)
def admin_approve(transaction_id: str) -> Response:
    caller = admin.require_superuser(_caller())
    return web.json_response(admin.approve_payment(caller, transaction_id))


@app.route("/api/admin/transactions/{transaction_id}/reject", methods=["POST"], content_types=ANY)
def admin_reject(transaction_id: str) -> Response:
    caller = admin.require_superuser(_caller())
    return web.json_response(admin.reject_payment(caller, transaction_id, web.json_body(_request(), optional=True)))


@app.route("/api/admin/users/{user_id}/staff", methods=["POST"], content_types=ANY)
def admin_set_staff(user_id: str) -> Response:
    caller, request = admin.require_superuser(_caller()), _request()
    user = admin.set_staff(caller, user_id, web.json_body(request), base_url=web.public_base_url(request))
    return web.json_response({"user": accounts.user_view(user)})


# --- dashboard -------------------------------------------------------------------------


@app.route("/", methods=["GET"])
def root() -> Response:
    return web.redirect("dashboard/", status=302)


@app.route("/dashboard", methods=["GET"])
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
    handlers = {
        "forgot": recovery.forgot_mails,
        "password_changed": recovery.password_changed_mails,
        "receipt": receipts.receipt_mails,
        "mfa_enrol": mfa.enrol_mails,
        "verify": verification.verify_mails,
    }
    return batches.each_record(
        (record.to_dict() for record in event), lambda records: delivery.handle_records(records, handlers)
    )


@app.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile_payments(event: Any) -> None:
    payments.reconcile_pending()


@app.schedule(Rate(1, unit=Rate.HOURS))
def expire_uploads(event: Any) -> None:
    expiry.expire_stale_uploads()

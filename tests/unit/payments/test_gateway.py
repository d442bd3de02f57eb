"""The aamarPay client over real HTTP: against the sandbox emulator, and against canned replies
for quirks the emulator never produces. Every failure mode, and that the key never leaks."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from chalicelib.payments import aamarpay
from chalicelib.payments.aamarpay import AamarPayClient, Customer, GatewayFailure, GatewayTimeout, SearchResult
from local.sandbox import SandboxServer
from tests.stack import free_port

STORE_ID = "gateway-test-store"
SIGNATURE_KEY = "k3y-must-never-leak-6a1f0b"
MERCHANT = "http://merchant.test/api"
FAST = {"connect_timeout": 0.5, "read_timeout": 0.25, "search_attempts": 3, "retry_backoff": 0.01}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(store_id=STORE_ID, signature_key=SIGNATURE_KEY, delay_seconds=0.6) as running:
        yield running


@pytest.fixture
def gateway(sandbox: SandboxServer) -> AamarPayClient:
    sandbox.sandbox.reset()
    return AamarPayClient(sandbox.url, STORE_ID, SIGNATURE_KEY, **FAST)


@dataclass
class Canned:
    """A real HTTP server answering whatever the test sets; counts and keeps the requests."""

    status: int = 200
    body: str = "{}"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def reply(self, value: Any) -> None:
        """Answer `value` as JSON with HTTP 200, as the gateway does even for its errors."""
        self.raw(json.dumps(value))

    def raw(self, body: str, status: int = 200, content_type: str = "application/json", **headers: str) -> None:
        self.body, self.status, self.content_type, self.headers = body, status, content_type, headers

    def client(self, **overrides: Any) -> AamarPayClient:
        return AamarPayClient(self.url, STORE_ID, SIGNATURE_KEY, **{**FAST, **overrides})

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append(request.full_path)
        response = Response(self.body, status=self.status, content_type=self.content_type, headers=self.headers)
        return response(environ, start_response)


@pytest.fixture(scope="module")
def _canned_server() -> Iterator[Canned]:
    canned = Canned()
    server = make_server("127.0.0.1", 0, canned, threaded=True)
    canned.url = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield canned
    server.shutdown()
    server.server_close()


@pytest.fixture
def canned(_canned_server: Canned) -> Canned:
    _canned_server.reply({})
    _canned_server.requests.clear()
    return _canned_server


def _tran_id() -> str:
    return uuid.uuid4().hex


def _initiate(client: AamarPayClient, tran_id: str | None = None, /, **changes: Any) -> str:
    tran_id = tran_id or _tran_id()
    arguments: dict[str, Any] = {
        "tran_id": tran_id,
        "amount": Decimal("100"),
        "currency": "BDT",
        "desc": "Upload access",
        "customer": Customer(name="alice", email="alice@example.com"),
        "success_url": f"{MERCHANT}/payment/success/",
        "fail_url": f"{MERCHANT}/payment/fail/",
        "cancel_url": f"{MERCHANT}/payment/cancel/?transaction_id={tran_id}",
        **changes,
    }
    return client.initiate(**arguments)


# --- initiate ----------------------------------------------------------------------------


def test_initiate_returns_the_payment_url_and_sends_every_field(
    gateway: AamarPayClient, sandbox: SandboxServer
) -> None:
    tran_id = _tran_id()
    url = _initiate(gateway, tran_id, amount=Decimal("100.5"))
    transaction = sandbox.sandbox.transaction(tran_id)
    assert transaction is not None
    assert url == f"{sandbox.url}/paynow.php?track={transaction.track}"
    sent = transaction.fields
    assert sent["amount"] == "100.50"
    assert (sent["currency"], sent["desc"], sent["type"]) == ("BDT", "Upload access", "json")
    assert (sent["cus_name"], sent["cus_email"]) == ("alice", "alice@example.com")
    assert (sent["cus_phone"], sent["cus_add1"], sent["cus_add2"]) == ("Not-Available",) * 3
    assert (sent["cus_city"], sent["cus_state"], sent["cus_postcode"]) == ("Not-Available",) * 3
    assert sent["cus_country"] == "Bangladesh"
    assert sent["cancel_url"] == f"{MERCHANT}/payment/cancel/?transaction_id={tran_id}"


def test_customer_blanks_become_the_filler_and_given_values_are_kept() -> None:
    fields = Customer(name=" ", email="a@b.co", phone="01711111111", city="  ", country="").fields()
    assert fields["cus_name"] == "Not-Available"
    assert fields["cus_phone"] == "01711111111"
    assert fields["cus_city"] == fields["cus_country"] == "Not-Available"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tran_id": "x" * 33}, "tran_id"),
        ({"tran_id": ""}, "tran_id"),
        ({"amount": Decimal(0)}, "amount"),
        ({"amount": Decimal("-1")}, "amount"),
        ({"amount": Decimal("NaN")}, "amount"),
    ],
)
def test_initiate_refuses_caller_bugs_before_sending(canned: Canned, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _initiate(canned.client(), **changes)
    assert canned.requests == []


@pytest.mark.parametrize(
    ("client_args", "reason"),
    [
        ({"store_id": "other-store"}, "gateway refused: Invalid Store ID"),
        ({"signature_key": "wrong-key"}, "gateway refused: Invalid Signature Key"),
    ],
)
def test_initiate_with_bad_credentials_fails_with_the_gateways_words(
    sandbox: SandboxServer, client_args: dict[str, str], reason: str
) -> None:
    settings = {"base_url": sandbox.url, "store_id": STORE_ID, "signature_key": SIGNATURE_KEY, **client_args}
    with pytest.raises(GatewayFailure) as caught:
        _initiate(AamarPayClient(**settings, **FAST))
    assert caught.value.reason == reason
    assert not isinstance(caught.value, GatewayTimeout)


def test_duplicate_tran_id_fails_and_is_not_retried(gateway: AamarPayClient, sandbox: SandboxServer) -> None:
    tran_id = _tran_id()
    _initiate(gateway, tran_id)
    with pytest.raises(GatewayFailure, match=r"tran_id: Dublicate Transaction ID Provided By You\."):
        _initiate(gateway, tran_id)
    assert sandbox.sandbox.hits["initiate"] == 2


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("initiate_500", "gateway answered HTTP 500"), ("initiate_garbage", "gateway answered non-JSON (text/html)")],
)
def test_initiate_server_errors_fail_once_without_retry(
    gateway: AamarPayClient, sandbox: SandboxServer, fault: str, reason: str
) -> None:
    sandbox.sandbox.set_faults(**{fault: True})
    with pytest.raises(GatewayFailure) as caught:
        _initiate(gateway)
    assert caught.value.reason == reason
    assert not isinstance(caught.value, GatewayTimeout)
    assert sandbox.sandbox.hits["initiate"] == 1


def test_initiate_timeout_is_a_gateway_timeout_and_never_retried(
    gateway: AamarPayClient, sandbox: SandboxServer
) -> None:
    tran_id = _tran_id()
    sandbox.sandbox.set_faults(initiate_timeout=True)
    with pytest.raises(GatewayTimeout, match="did not answer in time"):
        _initiate(gateway, tran_id)
    assert sandbox.sandbox.hits["initiate"] == 1
    # The gateway may have created it anyway: the search API is how we find out later.
    sandbox.sandbox.set_faults(initiate_timeout=False)
    result = _wait_for_search(gateway, tran_id)
    assert result.pay_status == "Incomplete"


def _wait_for_search(client: AamarPayClient, tran_id: str) -> SearchResult:
    deadline = time.monotonic() + 3
    while (result := client.search(tran_id)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ({"result": "false"}, "gateway refused: no reason given"),
        ({"result": "false", "message": "Store inactive"}, "gateway refused: Store inactive"),
        ({"amount": "Invalid Amount.", "currency": "Invalid Currency."}, "amount: Invalid Amount.; currency"),
        ({"result": "true"}, "without a usable payment_url"),
        ({"result": "true", "payment_url": "javascript:alert(1)"}, "without a usable payment_url"),
        ({"result": "true", "payment_url": "/paynow.php?track=AAM1"}, "without a usable payment_url"),
        ({"result": "true", "payment_url": "https://x.test/pay now"}, "without a usable payment_url"),
        ({"result": "true", "payment_url": 42}, "without a usable payment_url"),
        ([{"result": "true"}], "unexpected JSON value"),
        (12, "unexpected JSON value"),
        (None, "unexpected JSON value"),
    ],
)
def test_initiate_nonsense_replies_are_failures(canned: Canned, reply: Any, reason: str) -> None:
    canned.reply(reply)
    with pytest.raises(GatewayFailure, match=re.escape(reason)):
        _initiate(canned.client())


@pytest.mark.parametrize("result", ["true", "TRUE", True])
def test_initiate_accepts_result_true_as_string_or_boolean(canned: Canned, result: Any) -> None:
    canned.reply({"result": result, "payment_url": "https://sandbox.aamarpay.com/paynow.php?track=AAM1"})
    assert _initiate(canned.client()) == "https://sandbox.aamarpay.com/paynow.php?track=AAM1"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "reason"),
    [
        (200, "<html>Error</html>", "text/html; charset=utf-8", "non-JSON (text/html)"),
        (200, "", "", "non-JSON (unknown)"),
        (200, "\xff\xfe", "application/octet-stream", "non-JSON (application/octet-stream)"),
        (404, "{}", "application/json", "HTTP 404"),
        (503, "{}", "application/json", "HTTP 503"),
        (302, "", "text/html", "HTTP 302"),
    ],
)
def test_initiate_transport_garbage_is_a_short_failure(
    canned: Canned, status: int, body: str, content_type: str, reason: str
) -> None:
    canned.raw(body, status, content_type, Location=f"{canned.url}/elsewhere")
    with pytest.raises(GatewayFailure) as caught:
        _initiate(canned.client())
    assert reason in caught.value.reason
    assert len(canned.requests) == 1  # not retried, and no redirect followed


def test_refusal_text_is_shortened_and_never_echoes_the_key(canned: Canned) -> None:
    canned.reply(f"Invalid Signature Key {SIGNATURE_KEY} " + "x" * 500)
    with pytest.raises(GatewayFailure) as caught:
        _initiate(canned.client())
    assert SIGNATURE_KEY not in caught.value.reason
    assert "Invalid Signature Key ***" in caught.value.reason
    assert len(caught.value.reason) <= 200


def test_unreachable_gateway_is_a_failure_not_a_timeout() -> None:
    client = AamarPayClient(f"http://127.0.0.1:{free_port()}", STORE_ID, SIGNATURE_KEY, **FAST)
    with pytest.raises(GatewayFailure) as caught:
        _initiate(client)
    assert type(caught.value) is GatewayFailure
    assert caught.value.reason == "gateway unreachable (ConnectionError)"


# --- search ----------------------------------------------------------------------------------


def test_search_of_a_fresh_payment_is_pending(gateway: AamarPayClient) -> None:
    tran_id = _tran_id()
    _initiate(gateway, tran_id)
    result = gateway.search(tran_id)
    assert result is not None
    assert (result.mer_txnid, result.pay_status, result.status_code) == (tran_id, "Incomplete", "0")
    assert (result.amount, result.currency, result.store_id) == (Decimal("100.00"), "BDT", STORE_ID)
    assert result.pg_txnid == ""  # the gateway's id comes with a payment
    assert result.raw["status_title"].startswith("Incomplete")
    assert not result.is_successful


def test_search_sees_a_payment_settled_without_a_browser_return(
    gateway: AamarPayClient, sandbox: SandboxServer
) -> None:
    paid, failed = _tran_id(), _tran_id()
    _initiate(gateway, paid)
    _initiate(gateway, failed)
    sandbox.sandbox.settle(paid, paid=True)
    sandbox.sandbox.settle(failed, paid=False)
    paid_result, failed_result = gateway.search(paid), gateway.search(failed)
    assert paid_result is not None
    assert paid_result.is_successful
    assert failed_result is not None
    assert (failed_result.pay_status, failed_result.status_code, failed_result.is_successful) == ("Failed", "7", False)


@pytest.mark.parametrize("unknown", [True])
def test_search_of_an_unknown_transaction_is_none(
    gateway: AamarPayClient, sandbox: SandboxServer, unknown: Any
) -> None:
    tran_id = _tran_id()
    assert gateway.search(tran_id) is None
    _initiate(gateway, tran_id)
    sandbox.sandbox.set_faults(search_unknown=unknown)
    assert gateway.search(tran_id) is None


def test_search_reports_what_the_gateway_says_for_the_caller_to_match(
    gateway: AamarPayClient, sandbox: SandboxServer
) -> None:
    tran_id = _tran_id()
    _initiate(gateway, tran_id)
    sandbox.sandbox.set_faults(
        search_status="Successful", search_amount="1.00", search_currency="USD", search_store="other"
    )
    result = gateway.search(tran_id)
    assert result is not None
    assert result.is_successful
    assert (result.merchant_amount, result.merchant_currency, result.store_id) == (Decimal("1.00"), "USD", "other")
    assert (result.currency, result.amount) == ("BDT", Decimal("122.50"))  # the gateway answers in taka
    sandbox.sandbox.set_faults(search_status="Failed", search_amount="not money")
    result = gateway.search(tran_id)
    assert result is not None
    assert (result.is_successful, result.amount) == (False, None)


@pytest.mark.parametrize(
    ("status", "code", "successful"),
    [("Successful", "2", True), ("Successful", "0", False), ("Failed", "2", False), ("successful", "2", False)],
)
def test_success_needs_both_pay_status_and_status_code(status: str, code: str, successful: bool) -> None:
    result = SearchResult("t", status, code, Decimal(1), "BDT", "s", "p", {})
    assert result.is_successful is successful


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("100", Decimal(100)),
        ("100.0", Decimal(100)),
        (" 100.00 ", Decimal(100)),
        ("0.5", Decimal("0.5")),
        ("1,000.00", None),
        ("৳100", None),
        ("", None),
        ("NaN", None),
        ("Infinity", None),
        ("-5", None),
        ("abc", None),
    ],
)
def test_parse_amount(text: str, amount: Decimal | None) -> None:
    assert aamarpay.parse_amount(text) == amount


@pytest.mark.parametrize("reply", [{}, [], "", None, [{}], "No data found", "Transaction not found"])
def test_search_empty_and_not_found_replies_are_none(canned: Canned, reply: Any) -> None:
    canned.reply(reply)
    assert canned.client().search("t1") is None


def test_search_accepts_a_list_with_one_record_and_coerces_values_to_strings(canned: Canned) -> None:
    canned.reply([{"mer_txnid": "t1", "pay_status": "Successful", "status_code": 2, "amount": 100, "bank": None}])
    result = canned.client().search("t1")
    assert result is not None
    assert (result.status_code, result.amount, result.raw["bank"], result.currency) == ("2", Decimal(100), "", "")
    assert result.is_successful


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("Invalid Store ID", "gateway refused: Invalid Store ID"),
        ([{"mer_txnid": "t1"}, {"mer_txnid": "t1"}], "2 records"),
        ({"error": "Server busy"}, "no transaction record (error: Server busy)"),
        (7, "unexpected JSON value"),
    ],
)
def test_search_refusals_and_odd_shapes_are_failures(canned: Canned, reply: Any, reason: str) -> None:
    canned.reply(reply)
    with pytest.raises(GatewayFailure, match=re.escape(reason)):
        canned.client().search("t1")
    assert len(canned.requests) == 1


def test_search_with_bad_credentials_fails_loudly(sandbox: SandboxServer) -> None:
    client = AamarPayClient(sandbox.url, STORE_ID, "wrong-key", **FAST)
    with pytest.raises(aamarpay.GatewayAuthFailed, match="signature key not matched"):
        client.search(_tran_id())


def test_search_sends_the_four_parameters(canned: Canned) -> None:
    canned.client().search("t1")
    (path,) = canned.requests
    query = f"request_id=t1&store_id={STORE_ID}&signature_key={SIGNATURE_KEY}&type=json"
    assert path == f"/api/v1/trxcheck/request.php?{query}"


def test_search_retries_5xx_then_succeeds(gateway: AamarPayClient, sandbox: SandboxServer) -> None:
    tran_id = _tran_id()
    _initiate(gateway, tran_id)
    sandbox.sandbox.set_faults(search_500=2)
    result = gateway.search(tran_id)
    assert result is not None
    assert result.mer_txnid == tran_id
    assert sandbox.sandbox.hits["search"] == 3


def test_search_gives_up_after_its_attempts(gateway: AamarPayClient, sandbox: SandboxServer) -> None:
    sandbox.sandbox.set_faults(search_500=True)
    with pytest.raises(GatewayFailure, match="HTTP 500"):
        gateway.search(_tran_id())
    assert sandbox.sandbox.hits["search"] == 3


def test_search_garbage_is_a_failure_and_not_retried(gateway: AamarPayClient, sandbox: SandboxServer) -> None:
    tran_id = _tran_id()
    _initiate(gateway, tran_id)
    sandbox.sandbox.set_faults(search_garbage=True)
    with pytest.raises(GatewayFailure, match="non-JSON"):
        gateway.search(tran_id)
    assert sandbox.sandbox.hits["search"] == 1


def test_search_timeouts_are_retried_then_reported(gateway: AamarPayClient, sandbox: SandboxServer) -> None:
    tran_id = _tran_id()
    _initiate(gateway, tran_id)
    sandbox.sandbox.set_faults(search_timeout=1)
    result = gateway.search(tran_id)
    assert result is not None
    assert result.mer_txnid == tran_id
    sandbox.sandbox.set_faults(search_timeout=True)
    with pytest.raises(GatewayTimeout, match="did not answer in time"):
        gateway.search(tran_id)
    assert sandbox.sandbox.hits["search"] == 5


def test_search_of_an_unreachable_gateway_fails_after_retries() -> None:
    client = AamarPayClient(f"http://127.0.0.1:{free_port()}", STORE_ID, SIGNATURE_KEY, **FAST)
    with pytest.raises(GatewayFailure, match="unreachable"):
        client.search("t1")


# --- secrecy -----------------------------------------------------------------------------


@pytest.fixture
def all_logs() -> Iterator[io.StringIO]:
    """Every log line at DEBUG, raw (no redacting formatter), from the root and our own loggers."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(fields)s", defaults={"fields": ""}))
    loggers = [logging.getLogger(), logging.getLogger("paidupload"), logging.getLogger("urllib3")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield stream
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def _leaks(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    return [text for text in texts if SIGNATURE_KEY in text]


def test_search_logs_tran_id_and_outcome_and_redacts_urllib3s_url(
    gateway: AamarPayClient, all_logs: io.StringIO
) -> None:
    tran_id = _tran_id()
    _initiate(gateway, tran_id)
    gateway.search(tran_id)
    text = all_logs.getvalue()
    assert "signature_key=***" in text  # urllib3 did log the URL: the capture sees everything
    assert "'outcome': 'Incomplete/0'" in text
    assert tran_id in text
    assert SIGNATURE_KEY not in text


@pytest.mark.parametrize(
    "provoke",
    [
        pytest.param(lambda gateway, sandbox: sandbox.set_faults(search_timeout=True), id="timeout"),
        pytest.param(lambda gateway, sandbox: sandbox.set_faults(search_500=True), id="5xx"),
        pytest.param(lambda gateway, sandbox: sandbox.set_faults(search_garbage=True), id="garbage"),
        pytest.param(
            lambda gateway, sandbox: setattr(gateway, "base_url", f"http://127.0.0.1:{free_port()}"), id="down"
        ),
    ],
)
def test_failed_search_leaks_the_key_nowhere(
    gateway: AamarPayClient,
    sandbox: SandboxServer,
    all_logs: io.StringIO,
    provoke: Callable[[AamarPayClient, Any], None],
) -> None:
    provoke(gateway, sandbox.sandbox)
    with pytest.raises(GatewayFailure) as caught:
        gateway.search(_tran_id())
    assert _leaks(caught.value) == []
    assert "aamarpay search failed" in all_logs.getvalue()
    assert SIGNATURE_KEY not in all_logs.getvalue()


def test_failed_initiate_leaks_the_key_nowhere(
    gateway: AamarPayClient, sandbox: SandboxServer, all_logs: io.StringIO
) -> None:
    sandbox.sandbox.set_faults(initiate_timeout=True)
    with pytest.raises(GatewayTimeout) as caught:
        _initiate(gateway)
    assert _leaks(caught.value) == []
    assert SIGNATURE_KEY not in all_logs.getvalue()
    assert SIGNATURE_KEY not in repr(gateway)


# --- the configured client ---------------------------------------------------------------


def test_client_is_built_from_settings_once_per_container() -> None:
    from chalicelib.core.config import app_secrets, settings

    aamarpay.client.cache_clear()
    try:
        built = aamarpay.client()
        assert built.base_url == settings().aamarpay_base_url
        assert built.store_id == app_secrets().aamarpay_store_id
        assert aamarpay.client() is built
    finally:
        aamarpay.client.cache_clear()


# --- production never talks to the sandbox ------------------------------------------------------


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set a stage's environment; the cached settings and secrets are dropped before and after."""
    from chalicelib.core.config import app_secrets, settings

    def configure(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings.cache_clear()
        app_secrets.cache_clear()

    yield configure
    monkeypatch.undo()
    settings.cache_clear()
    app_secrets.cache_clear()


LIVE = {"STAGE": "prod", "AAMARPAY_BASE_URL": "https://secure.aamarpay.com", "SECRETS_SSM_PREFIX": "/paidupload/prod"}


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"AAMARPAY_BASE_URL": "https://sandbox.aamarpay.com"}, "not the live gateway"),
        ({"AAMARPAY_BASE_URL": "http://127.0.0.1:8001"}, "not the live gateway"),
        ({"SECRETS_SSM_PREFIX": ""}, "SECRETS_SSM_PREFIX is missing"),
    ],
)
def test_outside_the_local_stage_start_up_refuses_a_sandbox(
    stage: Callable[..., None], override: dict[str, str], reason: str
) -> None:
    from chalicelib.core.config import UnsafeConfiguration, settings

    stage(**{**LIVE, **override})
    with pytest.raises(UnsafeConfiguration, match=reason):
        settings()
    stage(ALLOW_SANDBOX_GATEWAY="true")  # a trial stage says so explicitly
    assert settings().sandbox_allowed


def test_outside_the_local_stage_the_public_sandbox_store_id_is_refused(
    aws_resources: dict[str, Any], stage: Callable[..., None]
) -> None:
    from chalicelib.core import aws
    from chalicelib.core.config import SANDBOX_STORE_ID, UnsafeConfiguration, app_secrets, settings

    ssm = aws.client("ssm")
    for name, value in (
        ("jwt-signing-key", "k" * 48),
        ("aamarpay-store-id", SANDBOX_STORE_ID),
        ("aamarpay-signature-key", "s"),
    ):
        ssm.put_parameter(Name=f"/paidupload/prod/{name}", Value=value, Type="SecureString")
    stage(**LIVE)
    assert settings().aamarpay_base_url == "https://secure.aamarpay.com"
    with pytest.raises(UnsafeConfiguration, match="sandbox store id"):
        app_secrets()
    stage(ALLOW_SANDBOX_GATEWAY="true")
    assert app_secrets().aamarpay_store_id == SANDBOX_STORE_ID


def test_a_trial_stage_on_the_sandbox_says_so_in_health(api: Any, stage: Callable[..., None]) -> None:
    assert api.call("GET", "/api/health/").data == {"status": "ok"}
    stage(STAGE="trial", ALLOW_SANDBOX_GATEWAY="true", AAMARPAY_BASE_URL="https://sandbox.aamarpay.com")
    assert api.call("GET", "/api/health/").data == {"status": "ok", "gateway": "sandbox"}


def test_the_prod_stage_points_at_the_live_gateway() -> None:
    from infra.package import stage_environment

    assert stage_environment("prod")["AAMARPAY_BASE_URL"] == "https://secure.aamarpay.com"

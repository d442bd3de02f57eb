"""Every function of the template, from the shipped zip, under AWS's own runtime client.

`build/package/deployment.zip` is unpacked into a task root and `layer-deployment.zip` (the
`ManagedLayer` every function lists) into an /opt of its own; each function's handler (as the
template names it) is started by `awslambdaric` in a venv holding only what Lambda's python3.11
runtime holds, and fed, through a Runtime API in this test, the events AWS delivers: API Gateway
REST proxy events, SQS events (an S3 notification, a mail job), EventBridge's scheduled event.
The functions talk to the running local stack's engines with its configuration, so every
request is answered as the same request is answered over HTTP on `make run`: same status, same
shape of body. A module the zip or the layer lacks fails here, on whatever path first imports it.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from chalicelib.core import clock
from chalicelib.mail import jobs
from local.state import StateDir
from tests import lambda_runtime as runtime
from tests.journeys import HIDDEN_INPUT, PAY_FORM_ACTION, Customer
from tests.stack import PROJECT_DIR

pytestmark = pytest.mark.integration

BUILD = PROJECT_DIR / "build"
ACCEPT_JSON = {"Accept": "application/json"}


@pytest.fixture(scope="session")
def runtime_python() -> Path:
    """Creating the venv takes ~30 s: kept under build/ while its requirements are unchanged."""
    return runtime.runtime_venv(BUILD / "lambda-runtime")


def function_environment(stack: Any) -> dict[str, str]:
    """What the local stack's own API and workers run with (tests/stack.py, local/stack.py)."""
    return {
        "STAGE": "local",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL_DYNAMODB": stack.dynamodb_endpoint,
        "AWS_ENDPOINT_URL_S3": stack.aws_endpoint,
        "AWS_ENDPOINT_URL_SQS": stack.aws_endpoint,
        "AAMARPAY_BASE_URL": stack.sandbox,
        "JWT_SIGNING_KEY": StateDir(stack.state_dir).signing_key(),
        "LOCAL_STATE_DIR": str(stack.state_dir),
        "BCRYPT_ROUNDS": "4",
    }


def start_all(
    template: dict[str, Any], python: Path, task_root: Path, opt: Path, *, env: dict[str, str], logs: Path
) -> dict[str, runtime.Function]:
    started = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            properties = resource["Properties"]
            assert properties["Runtime"] == "python3.11" and properties["CodeUri"] == "./deployment.zip"
            assert properties["Layers"] == [{"Ref": "ManagedLayer"}]
            started[name] = runtime.start_function(
                python,
                task_root,
                opt,
                name,
                handler=properties["Handler"],
                memory=properties["MemorySize"],
                environment=env,
                log_dir=logs,
            )
    return started


@pytest.fixture(scope="module")
def functions(
    package: dict[str, Any], runtime_python: Path, stack: Any, logs_dir: Path
) -> Iterator[dict[str, runtime.Function]]:
    task_root = runtime.unpack(BUILD / "package" / "deployment.zip", BUILD / "lambda-task")
    opt = runtime.unpack(BUILD / "package" / "layer-deployment.zip", BUILD / "lambda-opt")
    started = start_all(package, runtime_python, task_root, opt, env=function_environment(stack), logs=logs_dir)
    yield started
    for function in started.values():
        function.stop()


@pytest.fixture(scope="module")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lambda-runtime")


def shape(value: Any) -> Any:
    """A JSON value with its data taken out: keys and types stay (ids and tokens differ per call)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def answer(function: runtime.Function, event: dict[str, Any]) -> tuple[int, Any]:
    """The function's API Gateway answer: status and JSON body (the runtime must not report an error)."""
    invocation = function.invoke(event)
    assert invocation.outcome == "response", f"{invocation.payload}\n{function.logs()[-3000:]}"
    result = invocation.payload
    assert result["headers"]["Content-Type"].startswith("application/json"), result
    return result["statusCode"], json.loads(result["body"])


def assert_same(lambda_answer: tuple[int, Any], http: requests.Response) -> dict[str, Any]:
    status, body = lambda_answer
    assert (status, shape(body)) == (http.status_code, shape(http.json())), (body, http.text)
    return body


def return_form(payment_url: str) -> dict[str, str]:
    """The hosted page's Pay button, as a browser presses it: the fields it posts back to us."""
    page = requests.get(payment_url, timeout=30)
    action = PAY_FORM_ACTION.search(page.text)
    assert action, page.text[:300]
    sandbox = payment_url.split("/paynow.php", 1)[0]
    returned = requests.post(sandbox + html.unescape(action[1]), data={"action": "pay"}, timeout=30)
    return {html.unescape(name): html.unescape(value) for name, value in HIDDEN_INPUT.findall(returned.text)}


def verification_emails_to(stack: Any, address: str) -> list[str]:
    """The local outbox's verification emails to one address (its receipts arrive whenever the worker runs)."""
    folder = Path(stack.state_dir) / "outbox"
    texts = [path.read_text(errors="replace") for path in sorted(folder.glob("*.eml"))] if folder.exists() else []
    return [
        text
        for text in texts
        if re.search(rf"^To: .*{re.escape(address)}", text, re.MULTILINE)
        and re.search(r"^Subject: Confirm your email", text, re.MULTILINE)
    ]


def test_every_function_answers_as_the_local_stack_does(functions: dict[str, runtime.Function], stack: Any) -> None:
    api = functions["APIHandler"]
    ours, theirs = f"rt{clock.new_id()[:12]}", f"rt{clock.new_id()[:12]}"
    over_http = Customer(requests.Session(), stack.api, theirs, "runtime test password")

    def register(username: str) -> dict[str, str]:
        return {"username": username, "email": f"{username}@example.com", "password": "runtime test password"}

    # register, then the same name again (409 both ways)
    user = assert_same(
        answer(api, runtime.rest_event("POST", "/api/register", body=register(ours))),
        requests.post(stack.url("/api/register/"), json=register(theirs), timeout=30),
    )["user"]
    assert_same(
        answer(api, runtime.rest_event("POST", "/api/register", body=register(ours))),
        requests.post(stack.url("/api/register/"), json=register(theirs), timeout=30),
    )
    # log in: a wrong password (401), then the right one
    wrong = {"username": ours, "password": "not it at all"}
    assert_same(
        answer(api, runtime.rest_event("POST", "/api/login", body=wrong)),
        requests.post(stack.url("/api/login/"), json={**wrong, "username": theirs}, timeout=30),
    )
    # a passkey sign-in's options: the route that imports py_webauthn, cbor2 and cryptography from the layer
    assert_same(
        answer(api, runtime.rest_event("POST", "/api/login/passkey/options", body={"username": ours})),
        requests.post(stack.url("/api/login/passkey/options/"), json={"username": theirs}, timeout=30),
    )
    right = {"username": ours, "password": over_http.password}  # the same password for both
    tokens = answer(api, runtime.rest_event("POST", "/api/login", body=right))
    assert_same(tokens, requests.post(stack.url("/api/login/"), json={**right, "username": theirs}, timeout=30))
    over_http.log_in()
    bearer = {"Authorization": f"Bearer {tokens[1]['access']}"}
    # the access token the zip's function signed is one the local API accepts: same key, same code
    assert requests.get(stack.url("/api/me/"), headers=bearer, timeout=30).json()["user"]["id"] == user["id"]

    # initiate, press Pay on the sandbox's page, post its return form to the function
    initiated = assert_same(
        answer(api, runtime.rest_event("POST", "/api/initiate-payment", body={}, headers=bearer)),
        requests.post(stack.url("/api/initiate-payment/"), json={}, headers=over_http.bearer, timeout=30),
    )
    assert initiated["payment_url"].startswith(stack.sandbox)
    form = return_form(initiated["payment_url"])
    settled = answer(api, runtime.rest_event("POST", "/api/payment/success", body=form, form=True, headers=ACCEPT_JSON))
    assert settled[1]["status"] == "success", settled
    their_form = return_form(
        requests.post(stack.url("/api/initiate-payment/"), json={}, headers=over_http.bearer, timeout=30).json()[
            "payment_url"
        ]
    )
    assert_same(settled, requests.post(stack.url("/api/payment/success/"), data=their_form, headers=ACCEPT_JSON))

    # an upload request, its bytes to S3, then the S3 notification as the upload queue's event
    content = b"one two three four five"
    asked = assert_same(
        answer(
            api,
            runtime.rest_event(
                "POST", "/api/upload", body={"filename": "runtime.txt", "size": len(content)}, headers=bearer
            ),
        ),
        requests.post(
            stack.url("/api/upload/"),
            json={"filename": "runtime.txt", "size": len(content)},
            headers=over_http.bearer,
            timeout=30,
        ),
    )
    post = asked["upload"]
    sent = requests.post(post["url"], data=post["fields"], files={"file": ("runtime.txt", content)}, timeout=30)
    assert sent.status_code == 204, sent.text
    bucket = urlsplit(post["url"]).path.strip("/")
    notification = runtime.s3_notification(bucket, post["fields"]["key"], len(content))
    queue_arn = "arn:aws:sqs:us-east-1:123456789012:paidupload-local-upload-events"
    worked = functions["ProcessUploadEvents"].invoke(runtime.sqs_event([notification], queue_arn))
    assert (worked.outcome, worked.payload) == ("response", {"batchItemFailures": []})
    ours_over_http = Customer(requests.Session(), stack.api, ours, "runtime test password")
    ours_over_http.bearer = bearer  # the token the zip's function signed
    assert ours_over_http.wait_settled(asked["file"]["id"], timeout=60)["word_count"] == 5

    # the dead-letter handler on a notification for no known file: handled, nothing to do
    stray = runtime.s3_notification(bucket, f"uploads/{'0' * 32}/{'1' * 32}.txt", 3)
    dead = functions["ProcessDeadUploadEvents"].invoke(runtime.sqs_event([stray], queue_arn + "-dlq"))
    assert (dead.outcome, dead.payload) == ("response", {"batchItemFailures": []})

    # the mail queue's message: a verification job for our account, sent to the local outbox
    # Registration queued its own verification email and the settled payment a receipt, which the
    # stack's worker delivers whenever: count verification emails only, once the first has arrived.
    deadline = time.monotonic() + 60
    while not verification_emails_to(stack, f"{ours}@example.com"):
        assert time.monotonic() < deadline, "the registration's verification email never arrived"
        time.sleep(0.05)
    before = len(verification_emails_to(stack, f"{ours}@example.com"))
    job = {"kind": "verify", "id": clock.new_id(), "user_id": user["id"], "base_url": "https://example.test"}
    mail_arn = queue_arn.replace("upload-events", "mail")
    mailed = functions["SendMail"].invoke(runtime.sqs_event([json.dumps(job)], mail_arn))
    assert (mailed.outcome, mailed.payload) == ("response", {"batchItemFailures": []})
    assert len(verification_emails_to(stack, f"{ours}@example.com")) == before + 1

    # the outbox stream's record of a new job: the relay puts it on the mail queue, whose worker
    # (the stack's) sends it
    item = jobs.job_item("verify", user_id=user["id"], base_url="https://example.test")
    outbox_stream = "arn:aws:dynamodb:us-east-1:000000000000:table/paidupload-local-outbox/stream/2026-12-08T00:00"
    relayed = functions["RelayMail"].invoke(runtime.stream_event([item.serialize()], outbox_stream))
    assert (relayed.outcome, relayed.payload) == ("response", {"batchItemFailures": []})
    deadline = time.monotonic() + 60
    while len(verification_emails_to(stack, f"{ours}@example.com")) < before + 2:
        assert time.monotonic() < deadline, "the relayed job's email never arrived"
        time.sleep(0.05)

    # the schedules' event
    for name in ("ReconcilePayments", "ExpireUploads"):
        ran = functions[name].invoke(runtime.scheduled_event())
        assert (ran.outcome, ran.payload) == ("response", None), functions[name].logs()[-3000:]


SITE_PACKAGES = "python/lib/python3.11/site-packages"


@pytest.mark.parametrize(
    "removal",
    [
        ("layer-deployment.zip", f"{SITE_PACKAGES}/pynamodb", "No module named 'pynamodb'"),
        ("deployment.zip", "chalicelib/accounts/accounts.py", "No module named 'chalicelib.accounts.accounts'"),
    ],
    ids=["from-the-layer", "from-the-zip"],
)
def test_a_module_missing_from_the_zip_or_the_layer_fails_the_request_that_needs_it(
    package: dict[str, Any], runtime_python: Path, stack: Any, logs_dir: Path, removal: tuple[str, str, str]
) -> None:
    """The same zip and layer but one module: the runtime still starts (imports are lazy), and
    the first request that needs it answers 500 with the import error in the log."""
    task_root = runtime.unpack(BUILD / "package" / "deployment.zip", BUILD / "lambda-task-broken")
    opt = runtime.unpack(BUILD / "package" / "layer-deployment.zip", BUILD / "lambda-opt-broken")
    archive, removed, error = removal
    missing = (opt if archive == "layer-deployment.zip" else task_root) / removed
    shutil.rmtree(missing) if missing.is_dir() else missing.unlink()
    api = runtime.start_function(
        runtime_python,
        task_root,
        opt,
        "Broken",
        handler="app.app",
        memory=256,
        environment=function_environment(stack),
        log_dir=logs_dir,
    )
    try:
        body = {"username": f"rt{clock.new_id()[:12]}", "email": "x@example.com", "password": "runtime test password"}
        status, _ = answer(api, runtime.rest_event("POST", "/api/register", body=body))
        assert status == 500
        assert error in api.logs()
    finally:
        api.stop()

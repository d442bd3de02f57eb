"""The HTTP edge: request parsing, the contract's error shape, responses.

The only module of `chalicelib` that knows Chalice. Domain modules take and return plain
Python values and raise `errors.ApiError`; `endpoint` turns those into responses.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from chalice.app import Chalice, Request, Response

from chalicelib.core import aws, errors, logs, observability
from chalicelib.core.config import settings
from chalicelib.core.declare import Route
from chalicelib.core.validation import is_scalar_text

log = logs.get("web")
View = TypeVar("View", bound=Callable[..., Any])

# Accept every content type at the routing layer so that a wrong one is answered in our
# own error shape (Chalice's own 415 has a different body).
ANY_CONTENT_TYPE = ["*/*"]
MAX_BODY_BYTES = 64 * 1024
JSON_TYPE = "application/json; charset=utf-8"

# The declaration of the route being answered: what `json_body` and `query` check their input against.
_ROUTE: ContextVar[Route | None] = ContextVar("route", default=None)

# The errors Chalice answers by itself, before or around our views.
_CHALICE_ERROR_CODES = {
    400: "bad_request",
    405: "method_not_allowed",
    415: "unsupported_media_type",
    500: "internal_error",
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        headers={"Content-Type": JSON_TYPE, "Cache-Control": "no-store", **(headers or {})},
    )


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(error: errors.ApiError) -> Response:
    return json_response(error_body(error.code, error.message, error.details), error.status)


def csv_response(body: str, filename: str) -> Response:
    """A CSV download (the accountant's export), never cached."""
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }
    return Response(body=body, status_code=200, headers=headers)


def json_download(text: str, filename: str) -> Response:
    """A JSON document (already serialized) the browser saves as `filename`, never cached."""
    headers: dict[str, str | list[str]] = {
        "Content-Type": JSON_TYPE,
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }
    return Response(body=text, status_code=200, headers=headers)


def no_content() -> Response:
    return Response(body="", status_code=204, headers={"Cache-Control": "no-store"})


def static_response(body: str, content_type: str) -> Response:
    return Response(body=body, status_code=200, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})


def redirect(location: str, status: int = 303) -> Response:
    return Response(body="", status_code=status, headers={"Location": location})


def upload_origin() -> str:
    """The origin browsers send uploads to: that of the presigned POST's URL.

    Asked of the very client that presigns, so it follows the same configuration (moto or
    LocalStack locally, `https://<bucket>.s3.amazonaws.com` in AWS) and cannot drift from the
    URLs handed out. Presigning is local work (no request); only HTML pages need it.
    """
    post = aws.client("s3").generate_presigned_post(Bucket=settings().upload_bucket, Key="any-key-same-origin")
    parts = urlsplit(post["url"])
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy() -> str:
    """The dashboard's CSP: its own files only (no inline script or style), API calls to
    this origin, uploads to the bucket, never framed. The gateway's payment page is reached
    by navigation (`location.assign`), which CSP does not restrict, so no form goes there."""
    directives = {
        "default-src": "'self'",
        "connect-src": f"'self' {upload_origin()}",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(response: Response) -> None:
    """`nosniff` on every response; the CSP on every HTML page."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    content_type = str(response.headers.get("Content-Type", ""))
    if content_type.partition(";")[0].strip().lower() == "text/html":
        response.headers["Content-Security-Policy"] = content_security_policy()


def _content_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


def _raw_body(request: Request) -> bytes:
    raw = request.raw_body or b""
    if isinstance(raw, str):  # Chalice types it `str | bytes`; API Gateway events decode to bytes
        raw = raw.encode()
    if len(raw) > MAX_BODY_BYTES:
        raise errors.ApiError("Request body is too large.", code="payload_too_large")
    return raw


def _refuse_constant(name: str) -> Any:
    """`NaN`, `Infinity` and `-Infinity` are Python's extensions, not JSON (RFC 8259)."""
    raise ValueError(f"{name} is not JSON")


def json_body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; 415 for another content type, 400 for malformed JSON."""
    raw = _raw_body(request)
    if optional and not raw.strip():
        return {}
    if _content_type(request) not in ("application/json", ""):
        raise errors.UnsupportedMediaType("Send the request body as application/json.")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8, bad syntax, NaN/Infinity and integers longer than
        # Python's int-string limit (4300 digits); RecursionError nesting deeper than the
        # decoder's stack. Each is a malformed body, not our fault.
        raise errors.ValidationError("Request body is not valid JSON.", code="malformed_json") from None
    if not isinstance(body, dict):
        raise errors.ValidationError("Request body must be a JSON object.")
    if route := _ROUTE.get():
        route.check_body(body)
    return body


def form_body(request: Request) -> dict[str, str]:
    """A form-encoded body (gateway returns); a JSON object of strings is accepted too.

    Values that are not strings, or not scalar text (a JSON lone surrogate), are dropped as
    the gateway never sends them: what remains is safe to look up, store and log.
    """
    raw = _raw_body(request)
    if _content_type(request) == "application/json":
        parsed = json_body(request, optional=True)
        return {k: v for k, v in parsed.items() if isinstance(v, str) and is_scalar_text(k) and is_scalar_text(v)}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.ValidationError("Form body is not UTF-8.") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def query(request: Request) -> dict[str, str]:
    """The query parameters, checked against the route's declaration (an empty value is a value)."""
    params = dict(request.query_params or {})
    if route := _ROUTE.get():
        route.check_query(params)
    return params


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("Send an access token: Authorization: Bearer <token>.")
    return token.strip()


def public_base_url(request: Request) -> str:
    """Absolute base of this API: configured, or derived from the request in AWS.

    On an `execute-api` host the app lives below the stage prefix (`/api`), which must be
    part of every URL handed to browsers or the gateway.
    """
    configured = settings().public_base_url
    if configured:
        return configured
    host = request.headers.get("host", "localhost")
    proto = request.headers.get("x-forwarded-proto", "https")
    stage = (request.context or {}).get("stage", "")
    prefix = f"/{stage}" if stage and host.endswith(".amazonaws.com") else ""
    return f"{proto}://{host}{prefix}"


def ends_with_slash(request: Request) -> bool:
    """Whether the path as sent ended with `/` (route matching drops the slash, the context keeps it)."""
    return str((request.context or {}).get("path", "/")).endswith("/")


def wants_json(request: Request) -> bool:
    return "application/json" in (request.headers.get("accept") or "")


def endpoint(view: Callable[..., Any], declared: Route | None = None) -> Callable[..., Any]:
    """Answer domain errors in the contract's shape and hide unexpected ones behind a 500;
    while the view runs, its input is checked against `declared`."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _ROUTE.set(declared)
        try:
            return view(*args, **kwargs)
        except errors.ApiError as error:
            return error_response(error)
        except Exception:
            log.exception("unhandled error")
            return json_response(error_body("internal_error", "Something went wrong on our side; please retry."), 500)
        finally:
            _ROUTE.reset(token)

    return wrapper


class App(Chalice):
    """Chalice whose every route answers domain errors in the contract's shape (`endpoint`),
    so no view needs a decorator of its own for it; `serve` routes are declared (`declare.Route`)."""

    def __init__(self, app_name: str) -> None:
        super().__init__(app_name=app_name)
        self.declarations: list[Route] = []  # in the order served: the OpenAPI document's paths

    def route(self, path: str, **kwargs: Any) -> Callable[[View], View]:
        register = super().route(path, **kwargs)

        def decorator(view: View) -> View:
            register(endpoint(view))
            return view

        return decorator

    def serve(self, *declared: Route) -> Callable[[View], View]:
        """Serve each of `declared` (one path, one method each) with this view. Every content type
        reaches the view: one that reads a body checks the type itself (our 415, not Chalice's),
        one that reads none ignores it (aamarPay's cancel link comes back by GET or by POST)."""

        def decorator(view: View) -> View:
            for route in declared:
                register = super(App, self).route(route.path, methods=[route.method], content_types=ANY_CONTENT_TYPE)
                register(endpoint(view, route))
                self.declarations.append(route)
            return view

        return decorator


def request_context_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Log each request's outcome in its invocation's context (`observability`), reshape
    Chalice's own error bodies, and add the security headers."""
    context = event.context or {}
    with observability.http_invocation(event) as rid:
        started = time.perf_counter()
        response = get_response(event)
        if isinstance(response.body, dict) and set(response.body) == {"Code", "Message"}:
            status = response.status_code
            code = _CHALICE_ERROR_CODES.get(status, "bad_request")
            response.body = error_body(code, str(response.body["Message"]))
            response.headers["Content-Type"] = JSON_TYPE
        response.headers["X-Request-Id"] = rid
        security_headers(response)
        logs.event(
            log,
            "request",
            method=event.method,
            path=context.get("resourcePath", event.path),
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

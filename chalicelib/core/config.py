"""Settings read from the environment once per container.

Plain values come from environment variables (set per stage in `.chalice/config.json`
or by the local stack). Secrets come from SSM Parameter Store when `SECRETS_SSM_PREFIX`
is set (AWS), otherwise from the environment or safe sandbox defaults (local).
"""

from __future__ import annotations

import functools
import os
import secrets
from dataclasses import dataclass
from decimal import Decimal

# aamarPay publishes this pair for its public sandbox; shipping it as the default is safe.
SANDBOX_STORE_ID = "aamarpaytest"
SANDBOX_SIGNATURE_KEY = "dbb74894e82415a2f7ff0ec3a97e4183"
LIVE_GATEWAY_URL = "https://secure.aamarpay.com"
LOCAL_STAGES = ("local", "test")  # the only stages that may talk to a sandbox without saying so


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


@dataclass(frozen=True)
class Settings:
    stage: str
    resource_prefix: str
    public_base_url: str
    aamarpay_base_url: str
    payment_amount: Decimal
    payment_currency: str
    max_upload_bytes: int
    max_files_per_user: int
    max_bytes_per_user: int
    upload_requests_per_minute: int
    bcrypt_rounds: int
    access_token_seconds: int
    refresh_token_seconds: int
    login_max_failures: int
    login_lockout_seconds: int
    payment_recheck_after_seconds: int
    payment_expire_after_seconds: int
    upload_url_seconds: int
    pending_upload_expire_seconds: int
    download_url_seconds: int
    secrets_ssm_prefix: str
    allow_sandbox_gateway: bool
    mail_backend: str
    mail_from: str
    mfa_issuer: str  # the name authenticator apps show beside the account
    # Lambda's SQS event source mappings (and the local runner): messages per invocation, and
    # how long a mapping may wait to fill a batch (docs/deploy.md#batched-queues).
    queue_batch_size: int = 10
    queue_batch_window_seconds: int = 1

    def resource_name(self, short_name: str) -> str:
        """Physical name of a table, bucket or queue: one prefix per stage."""
        return f"{self.resource_prefix}-{short_name}"

    @property
    def sandbox_allowed(self) -> bool:
        """The local stages, or a trial stage that set `ALLOW_SANDBOX_GATEWAY=true`."""
        return self.stage in LOCAL_STAGES or self.allow_sandbox_gateway

    def refusals(self) -> list[str]:
        """Why this configuration must not serve real customers (empty when it may)."""
        if self.sandbox_allowed:
            return []
        problems = []
        if self.aamarpay_base_url != LIVE_GATEWAY_URL:
            problems.append(f"AAMARPAY_BASE_URL is not the live gateway {LIVE_GATEWAY_URL}")
        if not self.secrets_ssm_prefix:
            problems.append("SECRETS_SSM_PREFIX is missing (each container would sign tokens with its own key)")
        return problems

    @property
    def upload_bucket(self) -> str:
        return _env("UPLOAD_BUCKET", self.resource_name("uploads"))

    @property
    def upload_queue(self) -> str:
        return _env("UPLOAD_QUEUE", self.resource_name("upload-events"))

    @property
    def upload_dead_letter_queue(self) -> str:
        return f"{self.upload_queue}-dlq"

    @property
    def mail_queue(self) -> str:
        return _env("MAIL_QUEUE", self.resource_name("mail"))

    @property
    def mail_dead_letter_queue(self) -> str:
        return f"{self.mail_queue}-dlq"


class UnsafeConfiguration(RuntimeError):
    """Start-up refuses a stage that would take customers' money through a sandbox."""


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """The stage's settings; outside the local stages a sandbox gateway refuses to start."""
    config = _read_settings()
    if problems := config.refusals():
        raise UnsafeConfiguration(f"stage {config.stage!r} refuses to start: " + "; ".join(problems))
    return config


def _read_settings() -> Settings:
    api_port = _env("API_PORT", "8000")
    stage = _env("STAGE", "local")
    # In AWS the base URL is taken from the request unless configured (custom domains).
    default_base_url = f"http://localhost:{api_port}" if stage == "local" else ""
    return Settings(
        stage=stage,
        resource_prefix=_env("RESOURCE_PREFIX", "paidupload-local"),
        public_base_url=_env("PUBLIC_BASE_URL", default_base_url).rstrip("/"),
        aamarpay_base_url=_env("AAMARPAY_BASE_URL", "http://127.0.0.1:8001").rstrip("/"),
        payment_amount=Decimal(_env("PAYMENT_AMOUNT", "100.00")).quantize(Decimal("0.01")),
        payment_currency=_env("PAYMENT_CURRENCY", "BDT"),
        max_upload_bytes=_int("MAX_UPLOAD_BYTES", 10 * 1024 * 1024),
        max_files_per_user=_int("MAX_FILES_PER_USER", 200),
        max_bytes_per_user=_int("MAX_BYTES_PER_USER", 100 * 1024 * 1024),
        upload_requests_per_minute=_int("UPLOAD_REQUESTS_PER_MINUTE", 30),
        bcrypt_rounds=_int("BCRYPT_ROUNDS", 12),
        access_token_seconds=_int("ACCESS_TOKEN_SECONDS", 15 * 60),
        refresh_token_seconds=_int("REFRESH_TOKEN_SECONDS", 7 * 24 * 3600),
        login_max_failures=_int("LOGIN_MAX_FAILURES", 5),
        login_lockout_seconds=_int("LOGIN_LOCKOUT_SECONDS", 15 * 60),
        payment_recheck_after_seconds=_int("PAYMENT_RECHECK_AFTER_SECONDS", 120),
        payment_expire_after_seconds=_int("PAYMENT_EXPIRE_AFTER_SECONDS", 24 * 3600),
        upload_url_seconds=_int("UPLOAD_URL_SECONDS", 300),
        pending_upload_expire_seconds=_int("PENDING_UPLOAD_EXPIRE_SECONDS", 3600),
        download_url_seconds=_int("DOWNLOAD_URL_SECONDS", 300),
        secrets_ssm_prefix=_env("SECRETS_SSM_PREFIX", ""),
        allow_sandbox_gateway=_env("ALLOW_SANDBOX_GATEWAY", "false").lower() == "true",
        mail_backend=_env("MAIL_BACKEND", "outbox" if stage in LOCAL_STAGES else "ses"),
        mail_from=_env("MAIL_FROM", "PaidUpload <no-reply@paidupload.localhost>"),
        mfa_issuer=_env("MFA_ISSUER", "PaidUpload"),
        queue_batch_size=_int("QUEUE_BATCH_SIZE", 10),
        queue_batch_window_seconds=_int("QUEUE_BATCH_WINDOW_SECONDS", 1),
    )


# Secrets field -> SSM parameter name below `SECRETS_SSM_PREFIX` (the IAM policies name these too).
SECRET_PARAMETERS = {
    "jwt_signing_key": "jwt-signing-key",
    "aamarpay_store_id": "aamarpay-store-id",
    "aamarpay_signature_key": "aamarpay-signature-key",
}


@dataclass(frozen=True)
class Secrets:
    jwt_signing_key: str
    aamarpay_store_id: str
    aamarpay_signature_key: str


@functools.lru_cache(maxsize=1)
def app_secrets() -> Secrets:
    """Secrets, fetched once per container (one SSM call in AWS, none locally)."""
    config = settings()
    if config.secrets_ssm_prefix:
        loaded = _secrets_from_ssm(config.secrets_ssm_prefix)
        if loaded.aamarpay_store_id == SANDBOX_STORE_ID and not config.sandbox_allowed:
            raise UnsafeConfiguration(f"stage {config.stage!r} refuses the public sandbox store id")
        return loaded
    return Secrets(
        # A per-process random key is fine locally: tokens die with the process.
        jwt_signing_key=_env("JWT_SIGNING_KEY", "") or secrets.token_urlsafe(48),
        aamarpay_store_id=_env("AAMARPAY_STORE_ID", SANDBOX_STORE_ID),
        aamarpay_signature_key=_env("AAMARPAY_SIGNATURE_KEY", SANDBOX_SIGNATURE_KEY),
    )


def _secrets_from_ssm(prefix: str) -> Secrets:
    from chalicelib.core import aws

    names = {field: f"{prefix}/{name}" for field, name in SECRET_PARAMETERS.items()}
    reply = aws.client("ssm").get_parameters(Names=list(names.values()), WithDecryption=True)
    values = {p["Name"]: p["Value"] for p in reply["Parameters"]}
    missing = [name for name in names.values() if name not in values]
    if missing:
        raise RuntimeError(f"missing SSM parameters: {', '.join(missing)}")
    return Secrets(**{field: values[name] for field, name in names.items()})

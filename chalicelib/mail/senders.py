"""Where an email goes: the local outbox (`.eml` files, printed on the console) or SES v2.

`MAIL_BACKEND` chooses (`outbox` by default on the local stages, `ses` elsewhere). Both take
the same RFC 5322 message, so what the outbox shows is what SES would send.
"""

from __future__ import annotations

import hashlib
import os
from email.message import EmailMessage
from pathlib import Path

from chalicelib.core import aws, clock
from chalicelib.core.config import settings
from chalicelib.mail.messages import Letter


def outbox_dir() -> Path:
    return Path(os.environ.get("LOCAL_STATE_DIR") or ".local") / "outbox"


def send(letter: Letter, message: EmailMessage, dedupe_key: str) -> None:
    if settings().mail_backend == "ses":
        _send_ses(message)
    else:
        _write_outbox(letter, message, dedupe_key)


def _send_ses(message: EmailMessage) -> None:
    """SES v2 SendEmail with the raw message; an error propagates so SQS retries it."""
    aws.client("sesv2").send_email(
        FromEmailAddress=settings().mail_from,
        Destination={"ToAddresses": [str(message["To"])]},
        Content={"Raw": {"Data": message.as_bytes()}},
    )


def _write_outbox(letter: Letter, message: EmailMessage, dedupe_key: str) -> None:
    """One `.eml` file per email (written whole, then renamed), and To, Subject, links printed."""
    folder = outbox_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{clock.now().strftime('%Y%m%dT%H%M%S%f')}-{hashlib.sha256(dedupe_key.encode()).hexdigest()[:16]}.eml"
    partial = folder / f".{name}.part"
    partial.write_bytes(message.as_bytes())
    partial.replace(folder / name)
    links = " ".join(letter.links)
    print(f"mail: To {message['To']} | Subject {message['Subject']}" + (f" | {links}" if links else ""), flush=True)

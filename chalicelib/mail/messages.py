"""The emails, in the account's language (English or Bengali), as RFC 5322 messages.

Every email has a plain-text and an HTML part built from one template; user values are
HTML-escaped in the HTML part. No email carries a password or any token but its own link's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

LANGUAGES = ("en", "bn")

# kind -> language -> (subject, lines). `{name}` fields are filled with the values given.
TEMPLATES: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "verify": {
        "en": ("Confirm your email address", ("Hello {username},", "Confirm your email address: {link}")),
        "bn": ("আপনার ইমেইল ঠিকানা নিশ্চিত করুন", ("নমস্কার {username},", "আপনার ইমেইল ঠিকানা নিশ্চিত করুন: {link}")),
    },
    "reset": {
        "en": (
            "Reset your password",
            (
                "Hello {username},",
                "Set a new password within 30 minutes: {link}",
                "If you did not ask for this, ignore this email; your password stays as it is.",
            ),
        ),
        "bn": (
            "আপনার পাসওয়ার্ড রিসেট করুন",
            (
                "নমস্কার {username},",
                "৩০ মিনিটের মধ্যে নতুন পাসওয়ার্ড দিন: {link}",
                "আপনি এটি না চেয়ে থাকলে এই ইমেইলটি উপেক্ষা করুন; আপনার পাসওয়ার্ড যেমন আছে তেমনই থাকবে।",
            ),
        ),
    },
    "changed": {
        "en": (
            "Your password was changed",
            (
                "Hello {username},",
                "Your password was changed at {time} and every session was ended.",
                "If this was not you, reset your password now.",
            ),
        ),
        "bn": (
            "আপনার পাসওয়ার্ড পরিবর্তন করা হয়েছে",
            (
                "নমস্কার {username},",
                "{time} সময়ে আপনার পাসওয়ার্ড পরিবর্তন করা হয়েছে এবং সব সেশন শেষ করা হয়েছে।",
                "এটি আপনি না করে থাকলে এখনই পাসওয়ার্ড রিসেট করুন।",
            ),
        ),
    },
    "mfa_enrol": {
        "en": (
            "Turn on two-factor authentication",
            (
                "Hello {username},",
                "You are now staff. Staff pages need two-factor authentication: log in at {link},"
                " turn it on with an authenticator app, then log in again with a code."
                " Or add a passkey there instead, and sign in with it.",
            ),
        ),
        "bn": (
            "দুই-ধাপের যাচাই চালু করুন",
            (
                "নমস্কার {username},",
                "আপনি এখন স্টাফ। স্টাফ পাতাগুলোর জন্য দুই-ধাপের যাচাই লাগে: {link} ঠিকানায় লগ ইন করুন,"
                " একটি অথেনটিকেটর অ্যাপ দিয়ে এটি চালু করুন, তারপর একটি কোড দিয়ে আবার লগ ইন করুন।"
                " অথবা সেখানে একটি পাসকি যোগ করে তা দিয়ে সাইন ইন করুন।",
            ),
        ),
    },
    "receipt": {
        "en": (
            "Receipt for your payment",
            (
                "Hello {username},",
                "We received your payment of {amount} {currency} at {time}.",
                "Transaction id: {transaction_id}",
                "Gateway transaction id: {gateway_transaction_id}",
            ),
        ),
        "bn": (
            "আপনার পেমেন্টের রসিদ",
            (
                "নমস্কার {username},",
                "{time} সময়ে আপনার {amount} {currency} পেমেন্ট পেয়েছি।",
                "লেনদেন আইডি: {transaction_id}",
                "গেটওয়ে লেনদেন আইডি: {gateway_transaction_id}",
            ),
        ),
    },
}


@dataclass(frozen=True)
class Letter:
    """One email to send: recipient, kind, language and the values its template names."""

    to: str
    kind: str
    language: str
    values: dict[str, str]

    @property
    def links(self) -> list[str]:
        return [self.values["link"]] if "link" in self.values else []


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else "en"


def render(letter: Letter, sender: str) -> EmailMessage:
    """The RFC 5322 message (UTF-8), text first and HTML as the alternative."""
    subject, lines = TEMPLATES[letter.kind][language_of(letter.language)]
    text = "\n\n".join(line.format(**letter.values) for line in lines) + "\n"
    escaped = {name: html.escape(value) for name, value in letter.values.items()}
    if "link" in letter.values:
        link = escaped["link"]
        escaped["link"] = f'<a href="{link}">{link}</a>'
    body = "".join(f"<p>{line.format(**escaped)}</p>" for line in lines)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = letter.to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text, charset="utf-8")
    message.add_alternative(
        f'<!doctype html><html lang="{language_of(letter.language)}"><body>{body}</body></html>',
        subtype="html",
        charset="utf-8",
    )
    return message

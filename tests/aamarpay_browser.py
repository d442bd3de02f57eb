"""A tiny browser for the aamarPay sandbox's hosted page: press a button, see where it sends you.

Pay, Pay (risky card) and Fail answer an auto-submitting form (a real browser POSTs its fields to
our success_url/fail_url); Cancel answers a redirect to cancel_url (or, with the sandbox's
`cancel_by_post` switch, an empty form POSTed there). `press` stops there and returns that last
hop, so a test can deliver it to the in-process test client or to the real stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


@dataclass(frozen=True)
class GatewayReturn:
    method: str  # "POST" (success/fail form, or a cancel by POST) or "GET" (cancel link)
    url: str  # absolute, at our API
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, str] = field(default_factory=dict)  # value -> name


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(_Form(values.get("action", "")))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms and "name" in values:
            self.forms[-1].buttons[values.get("value", "")] = values["name"]


def _only_form(html: str) -> _Form:
    parser = _Forms()
    parser.feed(html)
    assert len(parser.forms) == 1, f"expected one form, found {len(parser.forms)}"
    return parser.forms[0]


def press(payment_url: str, button: str) -> GatewayReturn:
    """Open the hosted page, press "pay", "pay_risky", "fail" or "cancel", and return where the browser goes next."""
    session = requests.Session()
    page = session.get(payment_url, timeout=10)
    page.raise_for_status()
    form = _only_form(page.text)
    data = {**form.fields, form.buttons[button]: button}
    reply = session.post(urljoin(payment_url, form.action), data=data, allow_redirects=False, timeout=10)
    if reply.is_redirect:
        return GatewayReturn("GET", urljoin(payment_url, reply.headers["Location"]))
    reply.raise_for_status()
    back = _only_form(reply.text)
    return GatewayReturn("POST", back.action, back.fields)

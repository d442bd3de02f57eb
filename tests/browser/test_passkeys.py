"""Passkeys in real Chromium, with its virtual authenticator (the DevTools protocol's `WebAuthn`
domain, through Playwright's CDP session): a platform authenticator with resident keys and
user verification that says yes by itself. Registration, discoverable and username-first
sign-in, staff reaching the console with a passkey alone as the second factor, and the
refusals: a removed passkey, a replayed assertion, a wrong origin, a sign count that went back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.journey import log_in, log_out, make_user, register, unique

pytestmark = pytest.mark.browser

REFUSED = "That passkey cannot sign you in."
PHISHING_ORIGIN = "http://localhost:1"  # same rp id (the host), another origin: a look-alike site


class VirtualAuthenticator:
    """Chromium's virtual platform authenticator on one tab."""

    def __init__(self, page: Any) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        options = {
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": True,
            "hasUserVerification": True,
            "isUserVerified": True,
            "automaticPresenceSimulation": True,
        }
        self.id = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]

    def credentials(self) -> list[dict[str, Any]]:
        return list(self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"])

    def set_sign_count(self, credential: dict[str, Any], sign_count: int) -> None:
        """Put the same key back with another count: what a clone of the authenticator would hold."""
        self.cdp.send(
            "WebAuthn.removeCredential", {"authenticatorId": self.id, "credentialId": credential["credentialId"]}
        )
        self.cdp.send(
            "WebAuthn.addCredential",
            {"authenticatorId": self.id, "credential": {**credential, "signCount": sign_count}},
        )


def _add_passkey(page: Any, name: str, *, listed: bool = True) -> None:
    card = page.locator("#passkeys-panel")
    card.get_by_label("Passkey name").fill(name)
    card.get_by_role("button", name="Add a passkey").click()
    if listed:
        expect(card.get_by_role("listitem").filter(has_text=name)).to_be_visible()


def _sign_in_with_passkey(page: Any, username: str = "") -> Any:
    form = page.locator("#login-form")
    form.get_by_label("Username").fill(username)
    form.get_by_role("button", name="Sign in with a passkey").click()
    return form


def _signed_in_as(page: Any, username: str) -> None:
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text(username)


def _registered_with_passkey(page: Any, stack: Any, prefix: str) -> tuple[str, VirtualAuthenticator]:
    page.goto(stack.url("/dashboard/"))
    authenticator = VirtualAuthenticator(page)
    username = unique(prefix)
    register(page, stack, username)
    _add_passkey(page, "This laptop")
    (credential,) = authenticator.credentials()
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"
    log_out(page)
    return username, authenticator


def test_register_then_sign_in_discoverably_and_username_first(page: Any, stack: Any) -> None:
    username, _ = _registered_with_passkey(page, stack, "pk")
    _sign_in_with_passkey(page)  # no username: the authenticator offers its passkey
    _signed_in_as(page, username)
    card = page.locator("#passkeys-panel")
    expect(card.get_by_role("listitem").filter(has_text="This laptop")).to_contain_text("last used")
    expect(page.locator("#activity")).to_contain_text("passkey added")
    log_out(page)
    _sign_in_with_passkey(page, username)
    _signed_in_as(page, username)


def test_a_removed_passkey_is_refused(page: Any, stack: Any) -> None:
    username, authenticator = _registered_with_passkey(page, stack, "pkgone")
    log_in(page, stack, username)  # a fresh password session may change a customer's passkeys
    card = page.locator("#passkeys-panel")
    card.get_by_role("button", name="Remove This laptop").click()
    expect(card.get_by_text("No passkeys yet.")).to_be_visible()
    log_out(page)
    assert len(authenticator.credentials()) == 1  # the device still holds it; the service does not
    form = _sign_in_with_passkey(page)
    expect(form.get_by_role("alert")).to_have_text(REFUSED)
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()


def test_a_replayed_assertion_is_refused(page: Any, stack: Any) -> None:
    username, _ = _registered_with_passkey(page, stack, "pkreplay")
    with page.expect_request(lambda request: request.url.endswith("/api/login/passkey/")) as sent:
        _sign_in_with_passkey(page)
    _signed_in_as(page, username)
    replay = page.request.post(
        stack.url("/api/login/passkey/"),
        data=sent.value.post_data,
        headers={"Content-Type": "application/json"},
    )
    assert replay.status == 401 and replay.json()["error"]["code"] == "invalid_credentials"


def test_an_assertion_made_for_another_origin_is_refused(page: Any, stack: Any) -> None:
    """A look-alike site relays our options to the authenticator and our user's answer to us:
    the browser writes the origin it saw into clientDataJSON, and the service refuses it."""
    username, _ = _registered_with_passkey(page, stack, "pkphish")
    page.route(f"{PHISHING_ORIGIN}/**", lambda route: route.fulfill(body="<!doctype html><title>Log in</title>"))
    page.goto(f"{PHISHING_ORIGIN}/login")
    options = page.request.post(
        stack.url("/api/login/passkey/options/"),
        data=json.dumps({"username": username}),
        headers={"Content-Type": "application/json"},
    )
    credential = page.evaluate(
        """async (options) => {
            const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
            return (await navigator.credentials.get({ publicKey })).toJSON();
        }""",
        options.json(),
    )
    assert json.loads(_client_data(credential))["origin"] == PHISHING_ORIGIN
    answer = page.request.post(
        stack.url("/api/login/passkey/"),
        data=json.dumps({"credential": credential}),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 401 and answer.json()["error"]["code"] == "invalid_credentials"


def _client_data(credential: dict[str, Any]) -> str:
    import base64

    text = credential["response"]["clientDataJSON"]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def test_a_sign_count_that_went_back_is_refused(page: Any, stack: Any) -> None:
    username, authenticator = _registered_with_passkey(page, stack, "pkclone")
    _sign_in_with_passkey(page)
    _signed_in_as(page, username)
    log_out(page)
    (credential,) = authenticator.credentials()
    assert credential["signCount"] >= 1
    authenticator.set_sign_count(credential, 0)  # the clone answers 1: not above what was seen
    form = _sign_in_with_passkey(page)
    expect(form.get_by_role("alert")).to_have_text(REFUSED)
    authenticator.set_sign_count(credential, credential["signCount"] + 5)  # the original moves on
    _sign_in_with_passkey(page)
    _signed_in_as(page, username)


def test_staff_reach_the_console_with_a_passkey_alone(page: Any, stack: Any) -> None:
    boss = unique("pkboss")
    make_user(stack, boss, "staff")
    page.goto(stack.url("/dashboard/"))
    VirtualAuthenticator(page)
    log_in(page, stack, boss)  # first log-in: the second factor's enrolment, alone on the page
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    _add_passkey(page, "Office key", listed=False)  # instead of TOTP: the card then signs in with it
    console = page.get_by_role("navigation", name="Staff console")
    expect(console).to_be_visible()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
    expect(page.locator("#stats")).to_contain_text("Users")  # GET /api/admin/stats/ answered
    log_out(page)
    _sign_in_with_passkey(page)  # a passkey alone: no password, no code
    expect(console).to_be_visible()
    expect(page.locator("#stats")).to_contain_text("Users")

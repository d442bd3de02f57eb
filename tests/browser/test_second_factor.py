"""The second factor in a real browser: enrolment with the QR code, the code step, a recovery code, turning it off."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from chalicelib.accounts import totp
from tests.browser.journey import PASSWORD, enrol_second_factor, log_out, register, unique

pytestmark = pytest.mark.browser


def _password_step(page: Any, stack: Any, username: str) -> Any:
    page.goto(stack.url("/dashboard/"))
    form = page.locator("#login-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    code_step = page.locator("#mfa-form")
    expect(code_step.get_by_label("Two-factor code")).to_be_focused()
    return code_step


def test_enrol_then_log_in_with_a_code_then_a_recovery_code_then_turn_it_off(page: Any, stack: Any) -> None:
    username = unique("otp")
    register(page, stack, username)
    panel = page.locator("#mfa-panel")
    expect(panel).to_contain_text("Two-factor authentication is off")
    secret = enrol_second_factor(page)
    codes = [str(code) for code in panel.locator("#mfa-code-list li").all_inner_texts()]
    assert len(set(codes)) == 10 and secret not in " ".join(codes)
    expect(panel).to_contain_text("Two-factor authentication is on")
    log_out(page)
    expect(panel.locator("#mfa-code-list li")).to_have_count(0)  # shown once, to that session only

    code_step = _password_step(page, stack, username)
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()  # a password alone opens nothing
    code_step.get_by_label("Two-factor code").fill("000000x")
    code_step.get_by_role("button", name="Verify").click()
    expect(code_step.get_by_role("alert")).to_have_text("That code is wrong, expired or already used.")
    code_step.get_by_label("Two-factor code").fill(totp.code_at(secret, totp.current_step() + 1))
    code_step.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    log_out(page)

    code_step = _password_step(page, stack, username)
    code_step.get_by_label("Two-factor code").fill(codes[0])
    code_step.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    panel.get_by_role("button", name="Turn off two-factor authentication").click()
    off = panel.locator("#mfa-disable-form")
    off.get_by_label("Password").fill(PASSWORD)
    off.get_by_label("Code from your app").fill(codes[0])  # spent: refused, announced with the form
    off.get_by_role("button", name="Turn off").click()
    expect(off.get_by_role("alert")).to_have_text("That code is wrong, expired or already used.")
    off.get_by_label("Code from your app").fill(codes[1])
    off.get_by_role("button", name="Turn off").click()
    expect(panel).to_contain_text("Two-factor authentication is off")
    expect(panel.get_by_role("button", name="Set up two-factor authentication")).to_be_visible()
    log_out(page)

    page.locator("#login-form").get_by_label("Username").fill(username)
    page.locator("#login-form").get_by_label("Password").fill(PASSWORD)
    page.locator("#login-form").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()  # no code asked any more

"""The second factor in a real browser: enrolment with the QR code, the code step, a recovery code, turning it off."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from chalicelib.accounts import totp
from tests.browser.journey import PASSWORD, enrol_second_factor, log_in, log_out, make_user, register, unique

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


def test_a_staff_members_first_log_in_is_enrolment_then_the_console(page: Any, stack: Any, screenshots: Path) -> None:
    """No staff page is asked for before the factor is on: no 403, no console error."""
    refused: list[str] = []
    errors: list[str] = []
    page.on("response", lambda r: r.status >= 400 and refused.append(f"{r.status} {r.url}"))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    boss = unique("first")
    make_user(stack, boss, "superuser")
    admin_calls: list[str] = []
    page.on("request", lambda r: "/api/admin/" in r.url and admin_calls.append(r.url))

    log_in(page, stack, boss)
    panel = page.locator("#mfa-panel")
    expect(panel).to_contain_text("Staff accounts need a second factor")
    expect(panel.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    expect(panel.locator("#mfa-setup-form").get_by_label("Code from your app")).to_be_focused()
    expect(page.get_by_role("navigation", name="Staff console")).to_be_hidden()
    expect(page.get_by_role("button", name="Pay ৳100")).to_be_hidden()  # the step is alone on the page
    page.screenshot(path=str(screenshots / "enrolment.png"), full_page=True)
    assert admin_calls == [] and refused == [] and errors == []

    secret = str(panel.locator("#mfa-secret").inner_text())
    panel.locator("#mfa-setup-form").get_by_label("Code from your app").fill("000000")
    panel.get_by_role("button", name="Turn on").click()  # a wrong code: said in the form, the step stays
    expect(panel.locator("#mfa-setup-form").get_by_role("alert")).not_to_be_empty()
    assert [r.split()[0] for r in refused] == ["400"] and len(errors) == 1  # that refusal, and its console line
    refused.clear()
    errors.clear()
    panel.locator("#mfa-setup-form").get_by_label("Code from your app").fill(totp.code_at(secret, totp.current_step()))
    panel.get_by_role("button", name="Turn on").click()
    expect(panel.locator("#mfa-code-list li")).to_have_count(10)
    expect(panel.get_by_role("button", name="Continue to the console")).to_be_focused()
    assert admin_calls == []

    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Staff console")).to_be_visible()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_focused()
    expect(page.get_by_role("img", name=re.compile("per day"))).to_be_visible()
    expect(panel.locator("#mfa-code-list li")).to_have_count(0)  # shown once
    assert refused == []
    assert errors == []

"""Accessibility and hostile input in the browser: axe-core, keyboard only, field errors, CSP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.browser.journey import (
    PASSWORD,
    console_page,
    enrol_second_factor,
    file_row,
    make_user,
    paid_user_with_a_file,
    register,
    unique,
)

pytestmark = pytest.mark.browser
CSP = "default-src 'self'; frame-ancestors 'none'"


def _serious(page: Any, language: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, in `language`
    (then back to English, which the journey's steps speak)."""
    page.get_by_label("Language").select_option(language)
    expect(page.locator("html")).to_have_attribute("lang", language)
    violations = Axe().run(page).response["violations"]
    page.get_by_label("Language").select_option("en")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture
def csp_page(page: Any) -> Any:
    """The page, with the dashboard served under the contract's Content-Security-Policy, and
    every CSP violation collected (the app must need no inline script or style)."""

    def with_policy(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})

    page.route("**/dashboard/**", with_policy)
    page.violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.violations.append(m.text))
    return page


@pytest.mark.parametrize("language", ["en", "bn"])
def test_axe_finds_nothing_serious_signed_out_paid_and_staff(
    csp_page: Any, stack: Any, tmp_path: Path, language: str
) -> None:
    page = csp_page
    page.goto(stack.url("/dashboard/"))
    expect(page.locator("#login-form")).to_be_visible()
    assert _serious(page, language) == []

    paid_user_with_a_file(page, stack, tmp_path, unique("axe"))
    assert _serious(page, language) == []

    page.locator("#logout").click()
    staff = unique("axestaff")
    make_user(stack, staff, "superuser")
    page.goto(stack.url("/dashboard/"))
    page.locator("#login-form input[name=username]").fill(staff)
    page.locator("#login-form input[name=password]").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#mfa-setup-form")).to_be_visible()
    assert _serious(page, language) == []  # the first log-in's enrolment, with the QR code
    enrol_second_factor(page, first_run=True)
    expect(page.locator("#chart svg")).to_be_visible()
    assert _serious(page, language) == []
    for name in ("Users", "Payments", "Files", "Activity", "Review"):
        console_page(page, name)
        expect(page.locator("#admin-status")).to_be_empty()
        assert _serious(page, language) == [], name
    console_page(page, "Activity")
    expect(page.locator("#admin-rows a.name").first).to_be_visible()
    page.locator("#admin-rows a.name").first.click()
    expect(page.locator("#user-detail")).to_be_visible()
    assert _serious(page, language) == []
    assert page.violations == []


def test_keyboard_alone_logs_in_searches_and_opens_a_user(page: Any, stack: Any) -> None:
    username = unique("keys")
    register(page, stack, username)
    page.locator("#logout").click()
    staff = unique("keystaff")
    make_user(stack, staff, "staff")
    page.goto(stack.url("/dashboard/"))
    page.locator("#login-form input[name=username]").focus()
    page.keyboard.type(staff)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    enrol_second_factor(page, first_run=True)

    users = page.get_by_role("navigation", name="Staff console").get_by_role("link", name="Users")
    users.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    search = page.get_by_label("Search users")
    expect(search).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Enter")
    expect(page.get_by_role("table", name="All users").get_by_role("row")).to_have_count(2)  # the search's answer
    found = page.get_by_role("table", name="All users").get_by_role("link", name=username)
    found.focus()
    outline = found.evaluate("node => getComputedStyle(node).outlineStyle")
    assert outline != "none"  # the focus is visible
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"User {username}")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Back to the list")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_focused()


def test_a_field_error_is_announced_with_its_field_and_the_label_stays(page: Any, stack: Any) -> None:
    page.goto(stack.url("/dashboard/"))
    form = page.locator("#register-form")
    form.get_by_label("Username").fill("a")
    form.get_by_label("Email").fill("not an email")
    form.get_by_label("Password").fill("short")
    form.get_by_role("button", name="Register").click()
    password = form.get_by_label("Password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")
    described = page.locator(f"#{password.get_attribute('aria-describedby')}")
    expect(described).not_to_be_empty()
    expect(password).to_have_accessible_description(described.inner_text())
    expect(form.get_by_role("alert")).not_to_be_empty()
    form.get_by_label("Password", exact=True).fill("long enough password")
    form.get_by_label("Username").fill(unique("fixed"))
    form.get_by_label("Email").fill("fixed@example.com")
    form.get_by_role("button", name="Register").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


@pytest.mark.parametrize("value", ["constructor", "__proto__", "toString", "<img src=x onerror=alert(1)>"])
def test_a_hostile_payment_return_is_ignored_and_the_session_is_restored(page: Any, stack: Any, value: str) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    username = unique("proto")
    register(page, stack, username)
    page.goto(stack.url(f"/dashboard/?payment={value}"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="could not be verified")).to_be_visible()
    assert errors == []
    assert page.locator("#banner img").count() == 0


def test_the_password_change_keeps_this_session_and_reports_a_wrong_password(page: Any, stack: Any) -> None:
    username = unique("pw")
    register(page, stack, username)
    form = page.locator("#password-form")
    form.get_by_label("Current password").fill("not my password")
    form.get_by_label("New password").fill("a brand new password")
    form.get_by_role("button", name="Change password").click()
    expect(form.get_by_role("alert")).not_to_be_empty()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()  # a wrong password is no lost session
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password").fill("a brand new password")
    form.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status").filter(has_text="password is changed")).to_be_visible()
    page.reload()  # the new refresh token was kept
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.locator("#logout").click()
    log_in_form = page.locator("#login-form")
    log_in_form.get_by_label("Username").fill(username)
    log_in_form.get_by_label("Password").fill("a brand new password")
    log_in_form.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_each_file_row_has_a_delete_button_that_deletes_it(page: Any, stack: Any, tmp_path: Path) -> None:
    paid_user_with_a_file(page, stack, tmp_path, unique("del"))
    file_row(page, "notes.txt").get_by_role("button", name="Delete").click()
    expect(page.locator("#files-status")).to_have_text("notes.txt is deleted.")
    expect(file_row(page, "notes.txt")).to_have_count(0)
    expect(page.get_by_role("list").filter(has_text="file deleted")).to_be_visible()

"""Forgot password in a real browser: the link from the outbox, a new password, the old session gone."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests import mailbox
from tests.browser.journey import register, unique

pytestmark = pytest.mark.browser
NEW_PASSWORD = "a brand new password"


def test_forgot_password_link_sets_a_new_password_and_ends_the_old_session(browser: Any, stack: Any) -> None:
    username = unique("rec")
    email = f"{username}@example.com"
    old = browser.new_context()
    new = browser.new_context()
    try:
        old_page, page = old.new_page(), new.new_page()
        for each in (old_page, page):
            each.set_default_timeout(15_000)
        register(old_page, stack, username)

        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(stack.url("/dashboard/"))
        page.get_by_role("button", name="Forgot password?").click()
        assert not errors, errors
        expect(page.locator("#register-form")).to_be_hidden()  # one Email field on screen
        page.locator("#forgot-form").get_by_label("Email").fill(email)
        page.get_by_role("button", name="Send reset link").click()
        expect(page.get_by_role("status")).to_contain_text("reset link")

        [link] = mailbox.wait_for_links(stack.state_dir / "outbox", email, "reset")
        page.goto(stack.url("/dashboard/?" + link.partition("?")[2]))  # the stack's own host, whatever the base
        assert "reset=" not in page.url  # the token leaves the address bar at once
        page.locator("#reset-form").get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Set password").click()
        expect(page.get_by_role("button", name="Log out")).to_be_visible()

        old_page.reload()  # the session from before the reset has ended
        expect(old_page.locator("#login-form")).to_be_visible()
        form = old_page.locator("#login-form")
        form.get_by_label("Username").fill(username)
        form.get_by_label("Password").fill(NEW_PASSWORD)
        form.get_by_role("button", name="Log in").click()
        expect(old_page.get_by_role("button", name="Log out")).to_be_visible()
    finally:
        old.close()
        new.close()

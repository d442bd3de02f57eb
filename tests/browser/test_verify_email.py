"""Verified email in a real browser: register, the link from the outbox, the dashboard says verified."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests import mailbox
from tests.browser.journey import register, unique

pytestmark = pytest.mark.browser


def test_the_emailed_link_verifies_the_address(page: Any, stack: Any) -> None:
    username = unique("ver")
    email = f"{username}@example.com"
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    register(page, stack, username)
    expect(page.locator("#verify-prompt")).to_contain_text(email)
    page.get_by_role("button", name="Resend verification email").click()
    expect(page.locator("#verify-status")).to_contain_text("new verification link")

    # Two emails; the worker writes each right after storing its token, so the later file holds the newest.
    older, fresh = mailbox.wait_for_links(stack.state_dir / "outbox", email, "verify", count=2)
    page.goto(stack.url("/dashboard/?" + older.partition("?")[2]))  # the stack's own host, whatever the base
    expect(page.locator("#banner")).to_contain_text("invalid")  # superseded
    assert "verify=" not in page.url  # the token leaves the address bar at once
    expect(page.locator("#verify-panel")).to_be_visible()  # the session renewed: still unverified

    page.goto(stack.url("/dashboard/?" + fresh.partition("?")[2]))
    expect(page.locator("#banner")).to_contain_text("Your email address is verified.")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()  # the session stayed
    expect(page.locator("#verify-panel")).to_be_hidden()
    page.goto(stack.url("/dashboard/?" + fresh.partition("?")[2]))  # a used link
    expect(page.locator("#banner")).to_contain_text("invalid")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert not errors, errors

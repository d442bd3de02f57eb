"""The whole journey in a real browser: register, pay through the gateway page, upload, counts, admin."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from chalicelib.core import clock
from tests.browser.journey import cell, console_page, file_row, log_in_staff, make_user, pay, register, upload

pytestmark = pytest.mark.browser


def _docx(tmp_path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_paragraph("Hello from a Word document")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "table words"
    table.cell(0, 1).text = "count"
    path = tmp_path / "report.docx"
    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(buffer.getvalue())
    return path


def test_register_pay_upload_and_see_counts(page: Any, stack: Any, tmp_path: Path, screenshots: Path) -> None:
    username = f"web{clock.new_id()[:10]}"
    page.goto(stack.url("/dashboard/"))
    expect(page.get_by_role("button", name="Register")).to_be_visible()
    page.screenshot(path=str(screenshots / "signed-out.png"), full_page=True)

    register(page, stack, username)
    expect(page.get_by_role("button", name="Upload")).to_be_hidden()
    page.screenshot(path=str(screenshots / "unpaid.png"), full_page=True)

    pay(page, stack)
    expect(page.get_by_role("status").filter(has_text="Payment received")).to_be_visible()
    assert "payment=" not in page.url  # the return's query string is cleaned up

    text = tmp_path / "notes.txt"
    text.write_text("one two three\nআমার সোনার বাংলা\n", encoding="utf-8")
    upload(page, text)
    expect(file_row(page, "notes.txt")).to_contain_text("completed", timeout=20_000)
    expect(cell(page.get_by_role("table", name="Your files"), "notes.txt", "Words")).to_have_text("6")

    upload(page, _docx(tmp_path))
    expect(file_row(page, "report.docx")).to_contain_text("completed", timeout=20_000)
    expect(cell(page.get_by_role("table", name="Your files"), "report.docx", "Words")).to_have_text("8")
    expect(page.get_by_role("table", name="Your payments")).to_contain_text("success")
    page.screenshot(path=str(screenshots / "paid-with-files.png"), full_page=True)

    page.reload()  # the session survives a reload (refresh token in sessionStorage)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_bad_login_shows_a_readable_error(page: Any, stack: Any) -> None:
    page.goto(stack.url("/dashboard/"))
    form = page.locator("#login-form")
    form.get_by_label("Username").fill("nobody-here")
    form.get_by_label("Password").fill("wrong password")
    form.get_by_role("button", name="Log in").click()
    expect(form.get_by_role("alert")).to_have_text("Wrong username or password.")


def test_staff_see_the_console_and_users_do_not(page: Any, stack: Any) -> None:
    plain = f"plain{clock.new_id()[:8]}"
    register(page, stack, plain)
    expect(page.get_by_role("navigation", name="Staff console")).to_be_hidden()
    page.get_by_role("button", name="Log out").click()

    staff = f"staff{clock.new_id()[:8]}"
    make_user(stack, staff, "staff")
    log_in_staff(page, stack, staff)
    expect(page.get_by_label("Statistics")).to_contain_text("Users")
    console_page(page, "Users")
    expect(page.get_by_role("table", name="All users")).to_contain_text(plain)
    console_page(page, "Activity")
    expect(page.get_by_role("table", name="All activity")).to_contain_text("user registered")
    expect(page.get_by_role("button", name="Grant staff")).to_have_count(0)  # staff look, never act


def test_parallel_calls_that_meet_an_expired_token_share_one_renewal(page: Any, stack: Any) -> None:
    """Refresh tokens rotate: two calls renewing at once with one refresh token would spend it
    against each other and log the user out. The page renews once and both calls go on."""
    register(page, stack, f"renew{clock.new_id()[:8]}")
    expiring = ("/api/transactions/", "/api/activity/")  # a re-render asks both at once
    failed: set[str] = set()
    retries: list[Any] = []
    refreshes: list[str] = []

    def answer(route: Any) -> None:
        path = urlsplit(route.request.url).path
        if path in expiring and path not in failed:
            failed.add(path)
            error = {"error": {"code": "invalid_token", "message": "The token has expired."}}
            route.fulfill(status=401, content_type="application/json", body=json.dumps(error))
            return
        if path in failed:
            retries.append(route.request)
        if path == "/api/refresh/":
            refreshes.append(path)
        route.continue_()

    page.route("**/api/**", answer)

    def retried(path: str) -> Any:
        return lambda response: urlsplit(response.url).path == path and response.request in retries

    with page.expect_response(retried(expiring[0])) as first, page.expect_response(retried(expiring[1])) as second:
        page.get_by_label("Language").select_option("bn")  # the page renders again in Bengali
    assert first.value.status == second.value.status == 200
    assert refreshes == ["/api/refresh/"]
    expect(page.locator("#logout")).to_be_visible()  # still signed in

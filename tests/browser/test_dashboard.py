"""The whole journey in a real browser: register, pay through the gateway page, upload, counts, admin."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from chalicelib import clock
from tests.stack import PROJECT_DIR

pytestmark = pytest.mark.browser
PASSWORD = "browser journey password"


def _register(page: Any, stack: Any, username: str) -> None:
    page.goto(stack.url("/dashboard/"))
    form = page.locator("#register-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Email").fill(f"{username}@example.com")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Register").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def _log_in(page: Any, stack: Any, username: str) -> None:
    page.goto(stack.url("/dashboard"))  # without the slash: the page must fix its own base
    form = page.locator("#login-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


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


def _upload(page: Any, path: Path) -> None:
    page.get_by_label("File", exact=True).set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_label("Upload progress")).to_have_attribute("value", "100")


def _row(page: Any, filename: str) -> Any:
    return page.get_by_role("table", name="Your files").get_by_role("row").filter(has_text=filename)


def test_register_pay_upload_and_see_counts(page: Any, stack: Any, tmp_path: Path, screenshots: Path) -> None:
    username = f"web{clock.new_id()[:10]}"
    page.goto(stack.url("/dashboard/"))
    expect(page.get_by_role("button", name="Register")).to_be_visible()
    page.screenshot(path=str(screenshots / "signed-out.png"), full_page=True)

    _register(page, stack, username)
    expect(page.get_by_role("button", name="Upload")).to_be_hidden()
    page.screenshot(path=str(screenshots / "unpaid.png"), full_page=True)

    page.get_by_role("button", name="Pay ৳100").click()
    page.wait_for_url(f"{stack.sandbox}/**")
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url("**/dashboard/**")
    expect(page.get_by_role("status").filter(has_text="Payment received")).to_be_visible()
    assert "payment=" not in page.url  # the return's query string is cleaned up

    text = tmp_path / "notes.txt"
    text.write_text("one two three\nআমার সোনার বাংলা\n", encoding="utf-8")
    _upload(page, text)
    expect(_row(page, "notes.txt")).to_contain_text("completed", timeout=20_000)
    expect(_row(page, "notes.txt")).to_contain_text("6")

    _upload(page, _docx(tmp_path))
    expect(_row(page, "report.docx")).to_contain_text("completed", timeout=20_000)
    expect(_row(page, "report.docx")).to_contain_text("8")
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


def test_staff_see_the_admin_view_and_users_do_not(page: Any, stack: Any, screenshots: Path) -> None:
    plain = f"plain{clock.new_id()[:8]}"
    _register(page, stack, plain)
    expect(page.get_by_role("heading", name="Admin")).to_be_hidden()
    page.get_by_role("button", name="Log out").click()

    staff = f"staff{clock.new_id()[:8]}"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": stack.aws_endpoint,
        "STAGE": "local",
        "RESOURCE_PREFIX": "paidupload-local",
    }
    subprocess.run(
        [sys.executable, "-m", "local.manage_user", "--username", staff, "--password", PASSWORD, "--role", "staff"],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    _log_in(page, stack, staff)
    expect(page.get_by_role("heading", name="Admin")).to_be_visible()
    expect(page.get_by_label("Admin list")).to_contain_text(plain)
    expect(page.get_by_label("Statistics")).to_contain_text("Users")
    page.get_by_label("View").select_option("activity")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_label("Admin list")).to_contain_text("user registered")
    expect(page.get_by_role("button", name="Grant staff")).to_have_count(0)  # staff look, never act
    page.screenshot(path=str(screenshots / "admin.png"), full_page=True)

"""Steps of a user's and a staff member's way through the dashboard, shared by the browser tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from chalicelib.accounts import totp
from chalicelib.core import clock
from tests.stack import PROJECT_DIR

PASSWORD = "browser journey password"


def unique(prefix: str) -> str:
    return f"{prefix}{clock.new_id()[:10]}"


def register(page: Any, stack: Any, username: str) -> None:
    page.goto(stack.url("/dashboard/"))
    form = page.locator("#register-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Email").fill(f"{username}@example.com")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Register").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def log_in(page: Any, stack: Any, username: str) -> None:
    page.goto(stack.url("/dashboard"))  # without the slash: the page must fix its own base
    form = page.locator("#login-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def enrol_second_factor(page: Any, *, first_run: bool = False) -> str:
    """Turn the second factor on with a code of the key the page shows; the key.

    A customer starts it from their page; a staff member's first log-in starts it by itself and,
    once the recovery codes are shown, goes on to the console."""
    panel = page.locator("#mfa-panel")
    if not first_run:
        panel.get_by_role("button", name="Set up two-factor authentication").click()
    expect(panel.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = str(panel.locator("#mfa-secret").inner_text())
    panel.locator("#mfa-setup-form").get_by_label("Code from your app").fill(totp.code_at(secret, totp.current_step()))
    panel.get_by_role("button", name="Turn on").click()
    expect(panel.locator("#mfa-code-list li")).to_have_count(10)
    if first_run:
        panel.get_by_role("button", name="Continue to the console").click()
        expect(page.get_by_role("navigation", name="Staff console")).to_be_visible()
    return secret


def log_in_staff(page: Any, stack: Any, username: str) -> str:
    """A new staff member's first log-in: the password, then enrolment, then the console."""
    log_in(page, stack, username)
    return enrol_second_factor(page, first_run=True)


def console_page(page: Any, name: str) -> None:
    """Open a page of the staff console from its navigation; its heading takes the focus."""
    page.get_by_role("navigation", name="Staff console").get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_focused()


def log_out(page: Any) -> None:
    page.locator("#logout").click()
    expect(page.locator("#login-form")).to_be_visible()


def pay(page: Any, stack: Any, button: str = "Pay ৳100") -> None:
    """Press Pay, then Pay on the gateway sandbox's page, and come back to the dashboard."""
    page.get_by_role("button", name=button).click()
    page.wait_for_url(f"{stack.sandbox}/**")
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url("**/dashboard/**")


def upload(page: Any, path: Path) -> None:
    page.get_by_label("File", exact=True).set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_label("Upload progress")).to_have_attribute("value", "100")


def file_row(page: Any, filename: str) -> Any:
    return page.get_by_role("table", name="Your files").get_by_role("row").filter(has_text=filename)


def cell(table: Any, row_text: str, column: str) -> Any:
    """One cell: the row holding `row_text`, the column headed `column` (so an assertion on it
    checks that value alone, not any digit elsewhere in the row such as the date's year)."""
    headers = [text.strip() for text in table.get_by_role("columnheader").all_text_contents()]
    return table.get_by_role("row").filter(has_text=row_text).locator("td").nth(headers.index(column))


def make_user(stack: Any, username: str, role: str) -> None:
    """An operator creates a staff member or superuser (`make user`)."""
    env = stack.tool_env()
    command = [
        sys.executable,
        "-m",
        "local.manage_user",
        "--username",
        username,
        "--password",
        PASSWORD,
        "--role",
        role,
    ]
    subprocess.run(command, cwd=PROJECT_DIR, env=env, check=True, capture_output=True)


def paid_user_with_a_file(page: Any, stack: Any, tmp_path: Path, username: str) -> None:
    """Register, pay, and upload a text file whose words are counted."""
    register(page, stack, username)
    pay(page, stack)
    expect(page.get_by_role("status").filter(has_text="Payment received")).to_be_visible()
    text = tmp_path / "notes.txt"
    text.write_text("one two three\nআমার সোনার বাংলা\n", encoding="utf-8")
    upload(page, text)
    expect(file_row(page, "notes.txt")).to_contain_text("completed", timeout=20_000)

"""Leaving in a real browser: the usage, "Download my data" and "Delete my account"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.journey import PASSWORD, paid_user_with_a_file, unique

pytestmark = pytest.mark.browser


def test_usage_export_and_deletion(page: Any, stack: Any, tmp_path: Path, screenshots: Path) -> None:
    username = unique("leaver")
    paid_user_with_a_file(page, stack, tmp_path, username)
    panel = page.locator("#leaving-panel")
    stored = (tmp_path / "notes.txt").stat().st_size
    expect(panel.locator("#usage")).to_have_text(f"1 of 200 files, {stored} B of 100 MB")

    with page.expect_download() as started:
        page.get_by_role("button", name="Download my data").click()
    download = started.value
    assert download.suggested_filename.startswith("my-data-") and download.suggested_filename.endswith(".json")
    data = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert set(data) == {"user", "payments", "files", "activity"}
    assert data["user"]["username"] == username
    assert [f["filename"] for f in data["files"]] == ["notes.txt"]
    assert [p["status"] for p in data["payments"]] == ["success"]
    expect(panel.get_by_role("status")).to_contain_text("is downloaded")

    page.get_by_role("button", name="Delete my account").click()
    confirm = page.get_by_role("form", name="Delete your account for good?")
    confirm.get_by_label("Password").fill("not the password")
    confirm.get_by_role("button", name="Delete everything").click()
    wrong = confirm.get_by_role("alert")
    expect(wrong).to_have_text("The password is wrong.")
    expect(confirm.get_by_label("Password")).to_have_accessible_description("The password is wrong.")
    page.screenshot(path=str(screenshots / "delete-account.png"), full_page=True)
    confirm.get_by_label("Password").fill(PASSWORD)
    confirm.get_by_role("button", name="Delete everything").click()
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#banner")).to_have_text("Your account is deleted. Thank you for using Paid uploads.")

    form = page.locator("#login-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(form.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.reload()
    expect(page.locator("#login-form")).to_be_visible()  # nothing of the session survived

"""The staff view in a real browser: find a user, their story, the daily chart, the CSV export."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from chalicelib.core import clock
from tests.browser.journey import cell, log_in_staff, log_out, make_user, paid_user_with_a_file, unique

pytestmark = pytest.mark.browser
HEADER = "transaction_id,username,user_id,status,amount,currency,gateway_transaction_id,created_at,updated_at"


@pytest.fixture
def customer(page: Any, stack: Any, tmp_path: Path) -> str:
    """A user who paid and uploaded notes.txt today; the page is left signed out."""
    username = unique("story")
    paid_user_with_a_file(page, stack, tmp_path, username)
    log_out(page)
    return username


def _detail(page: Any) -> Any:
    return page.locator("#user-detail")


def test_staff_find_a_user_by_prefix_and_read_their_story(
    page: Any, stack: Any, customer: str, screenshots: Path
) -> None:
    boss = unique("boss")
    make_user(stack, boss, "superuser")
    log_in_staff(page, stack, boss)

    page.get_by_label("Search users").fill(customer[:-1].upper())  # a prefix, in another case
    page.get_by_role("button", name="Search", exact=True).click()
    admin_list = page.get_by_label("Admin list")
    expect(admin_list.get_by_role("button", name=customer)).to_be_visible()
    expect(admin_list.get_by_role("row")).to_have_count(2)  # the header and that one user
    admin_list.get_by_role("button", name=customer).click()

    detail = _detail(page)
    expect(detail.get_by_role("heading", name=f"User {customer}")).to_be_focused()
    expect(detail.get_by_role("table", name="Their payments")).to_contain_text("success")
    expect(detail.get_by_role("table", name="Their files")).to_contain_text("notes.txt")
    expect(cell(detail.get_by_role("table", name="Their files"), "notes.txt", "Words")).to_have_text("6")
    expect(detail.locator("#detail-activity")).to_contain_text("file processed")
    detail.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "staff-user.png"), full_page=True)

    detail.get_by_role("button", name="Grant staff").click()  # the superuser acts right there
    expect(detail.get_by_role("button", name="Revoke staff")).to_be_visible()
    expect(detail.locator("#detail-account")).to_contain_text("staff")
    expect(detail.locator("#detail-activity")).to_contain_text("admin staff changed")

    page.get_by_label("View").select_option("activity")
    page.get_by_label("Action").select_option("admin_staff_changed")  # a choice, not free text
    page.get_by_role("button", name="Show").click()
    changed = admin_list.get_by_role("row").filter(has_text=customer)
    expect(changed).to_contain_text(boss)  # names, not ids: the user and the actor
    expect(changed.get_by_role("button", name=customer)).to_have_attribute("title", re.compile("^[0-9a-f]{32}$"))


def test_the_chart_shows_todays_payment(page: Any, stack: Any, customer: str, screenshots: Path) -> None:
    staff = unique("chart")
    make_user(stack, staff, "staff")
    log_in_staff(page, stack, staff)
    chart = page.get_by_role("img", name=re.compile("per day"))
    expect(chart).to_be_visible()
    today = clock.now().date().isoformat()
    bar = chart.locator(f'g[data-date="{today}"]')
    expect(bar.locator("title")).to_have_text(re.compile(r": [1-9]\d* paid"))
    assert bar.locator("rect.success").get_attribute("height") not in ("0", None)
    row = page.get_by_role("table", name="Figures per day").locator(f'tr[data-date="{today}"]')
    expect(row.locator("td").first).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(page.get_by_role("table", name="Figures per day").locator("tbody tr")).to_have_count(30)
    page.locator(".chart-block").screenshot(path=str(screenshots / "staff-chart.png"))

    page.get_by_label("Language").select_option("bn")  # the chart keeps "per day" in its name
    bengali_chart = page.get_by_role("img", name=re.compile("per day"))
    expect(bengali_chart.locator(f'g[data-date="{today}"] title')).to_contain_text("পরিশোধিত")
    expect(bengali_chart.locator("text.axis-label").last).to_have_text(re.compile("[০-৯]"))
    page.locator("#admin-panel").screenshot(path=str(screenshots / "staff-bn.png"))


def test_the_csv_export_downloads_the_ranges_payments(page: Any, stack: Any, customer: str, tmp_path: Path) -> None:
    staff = unique("books")
    make_user(stack, staff, "staff")
    log_in_staff(page, stack, staff)
    today = clock.now().date().isoformat()
    form = page.locator("#export-form")
    form.get_by_label("From").fill(today)
    form.get_by_label("To", exact=True).fill(today)
    form.get_by_label("Status").select_option("success")
    with page.expect_download() as started:
        form.get_by_role("button", name="Export CSV").click()
    download = started.value
    assert download.suggested_filename == f"transactions-{today}-{today}.csv"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(r["status"] == "success" and r["created_at"].startswith(today) for r in rows)
    mine = [r for r in rows if r["username"] == customer]
    assert len(mine) == 1 and (mine[0]["amount"], mine[0]["currency"]) == ("100.00", "BDT")
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    expect(page.locator("#admin-status")).to_contain_text("is downloaded")

    form.get_by_label("From").fill("2020-01-01")  # more than 366 days: the field says why
    form.get_by_role("button", name="Export CSV").click()
    to_field = form.get_by_label("To", exact=True)
    expect(to_field).to_have_attribute("aria-invalid", "true")
    problem = page.locator(f"#{to_field.get_attribute('aria-describedby')}")
    expect(problem).to_contain_text("366")

"""The staff console in a real browser: its pages, find a user, their story, the daily chart, the CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from chalicelib.accounts import totp
from chalicelib.core import clock
from tests.browser.journey import (
    PASSWORD,
    cell,
    console_page,
    log_in_staff,
    log_out,
    make_user,
    paid_user_with_a_file,
    pay,
    register,
    unique,
)

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
    console_page(page, "Users")

    page.get_by_label("Search users").fill(customer[:-1].upper())  # a prefix, in another case
    page.get_by_role("button", name="Search", exact=True).click()
    users = page.get_by_role("table", name="All users")
    expect(users.get_by_role("row")).to_have_count(2)  # the header and that one user
    page.screenshot(path=str(screenshots / "console-users.png"), full_page=True)
    users.get_by_role("link", name=customer).click()

    detail = _detail(page)
    expect(detail.get_by_role("heading", name=f"User {customer}")).to_be_focused()
    expect(page).to_have_url(re.compile(r"/dashboard/#user/[0-9a-f]{32}$"))
    expect(detail.get_by_role("table", name="Their payments")).to_contain_text("success")
    expect(detail.get_by_role("table", name="Their files")).to_contain_text("notes.txt")
    expect(cell(detail.get_by_role("table", name="Their files"), "notes.txt", "Words")).to_have_text("6")
    expect(detail.locator("#detail-activity")).to_contain_text("file processed")
    page.screenshot(path=str(screenshots / "staff-user.png"), full_page=True)

    detail.get_by_role("button", name="Grant staff").click()  # the superuser acts right there
    expect(detail.get_by_role("button", name="Revoke staff")).to_be_visible()
    expect(detail.locator("#detail-account")).to_contain_text("staff")
    expect(detail.locator("#detail-activity")).to_contain_text("admin staff changed")
    page.reload()  # the story is an address: it survives a reload
    expect(detail.get_by_role("heading", name=f"User {customer}")).to_be_visible()
    detail.get_by_role("button", name="Back to the list").click()
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_focused()

    console_page(page, "Activity")
    page.get_by_label("Action").select_option("admin_staff_changed")  # a choice, not free text
    page.get_by_role("button", name="Show").click()
    rows = page.get_by_role("table", name="All activity").locator("tbody tr")
    expect(rows.filter(has_not_text="admin staff changed")).to_have_count(0)  # the filter is applied
    changed = rows.filter(has_text=customer)
    expect(changed).to_contain_text(boss)  # names, not ids: the user and the actor, each a link
    expect(changed.get_by_role("link", name=customer)).to_have_attribute("title", re.compile("^[0-9a-f]{32}$"))
    expect(changed.get_by_role("link", name=boss)).to_have_attribute("href", re.compile("^#user/[0-9a-f]{32}$"))


def test_each_list_has_its_page_its_empty_state_and_more_pages(page: Any, stack: Any, customer: str) -> None:
    for _ in range(26):  # more than a page of activity, whatever ran before
        name = unique("many")
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        requests.post(stack.url("/api/register/"), json=body, timeout=30).raise_for_status()
    staff = unique("pages")
    make_user(stack, staff, "staff")
    log_in_staff(page, stack, staff)
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()  # where the console opens

    console_page(page, "Users")
    page.get_by_label("Search users").fill("no-such-user-")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_text("Nothing matches; change the search or the filter.")).to_be_visible()
    expect(page.get_by_role("table", name="All users")).to_be_hidden()  # no empty table

    console_page(page, "Files")
    expect(page.get_by_label("Search users")).to_be_hidden()  # each page has the filters its list has
    filters = page.get_by_role("form", name="Filters")
    filters.get_by_label("Status").select_option("completed")
    filters.get_by_role("button", name="Show").click()
    files = page.get_by_role("table", name="All files")
    expect(files.get_by_role("row").filter(has_text="notes.txt").first).to_contain_text("completed")
    expect(files.get_by_role("link", name=customer)).to_be_visible()

    console_page(page, "Payments")
    expect(page.get_by_role("button", name="Export CSV")).to_be_visible()  # the export beside the payments
    expect(page.get_by_role("table", name="All payments").get_by_role("link", name=customer)).to_be_visible()

    console_page(page, "Activity")  # every journey leaves more than a page of activity
    activity = page.get_by_role("table", name="All activity").locator("tbody tr")
    expect(activity).to_have_count(25)
    page.get_by_role("button", name="More").click()
    expect(activity).not_to_have_count(25)
    assert activity.count() > 25

    page.go_back()  # the pages are history entries
    expect(page.get_by_role("heading", name="Payments", exact=True)).to_be_visible()

    console_page(page, "Review")
    expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()

    nav = page.get_by_role("navigation", name="Staff console")
    nav.get_by_role("link", name="My page").click()  # a staff member is a customer too
    expect(page.get_by_role("button", name="Pay ৳100")).to_be_visible()
    expect(page.get_by_role("table", name="Your payments")).to_be_visible()
    expect(nav.get_by_role("link", name="My page")).to_have_attribute("aria-current", "page")
    expect(page.locator("#overview-page")).to_be_hidden()


def test_the_chart_shows_todays_payment(page: Any, stack: Any, customer: str, screenshots: Path) -> None:
    staff = unique("chart")
    make_user(stack, staff, "staff")
    log_in_staff(page, stack, staff)
    today_figures = page.get_by_label("Today", exact=True)
    expect(today_figures).to_contain_text(re.compile(r"Paid\s*[1-9]"))
    page.screenshot(path=str(screenshots / "console-overview.png"), full_page=True)
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
    page.screenshot(path=str(screenshots / "staff-bn.png"), full_page=True)


def test_the_csv_export_downloads_the_ranges_payments(page: Any, stack: Any, customer: str, tmp_path: Path) -> None:
    staff = unique("books")
    make_user(stack, staff, "staff")
    log_in_staff(page, stack, staff)
    console_page(page, "Payments")
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


@pytest.fixture
def risky_cards(stack: Any) -> Iterator[None]:
    """The gateway sandbox flags every card (its search answers risk_level "1") while the test runs."""
    faults = f"{stack.sandbox}/__sandbox/faults"
    requests.post(faults, json={"search_risk": "1"}, timeout=10).raise_for_status()
    yield
    requests.post(faults, json={"search_risk": None}, timeout=10).raise_for_status()


def _held(page: Any, stack: Any) -> str:
    """A customer whose payment the gateway took but flagged: it waits in review; signed out after."""
    username = unique("held")
    register(page, stack, username)
    pay(page, stack)
    expect(page.get_by_role("status").filter(has_text="held for review")).to_be_visible()
    mine = page.get_by_role("table", name="Your payments")
    expect(mine).to_contain_text("under review")  # the customer sees the state and why
    expect(mine.locator("small")).not_to_be_empty()
    expect(page.get_by_role("button", name="Upload")).to_be_hidden()  # nothing granted yet
    log_out(page)
    return username


def test_the_review_queue_approve_reject_and_a_stale_decision(
    page: Any, browser: Any, stack: Any, risky_cards: None, screenshots: Path
) -> None:
    approved, rejected = _held(page, stack), _held(page, stack)
    boss = unique("judge")
    make_user(stack, boss, "superuser")
    secret = log_in_staff(page, stack, boss)
    console_page(page, "Review")
    queue = page.get_by_role("table", name="Payments in review")
    for name in (approved, rejected):
        expect(queue.get_by_role("row").filter(has_text=name)).to_contain_text("risk")  # the reason
    page.screenshot(path=str(screenshots / "review.png"), full_page=True)

    other = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()  # a second superuser's tab
    try:
        other.goto(stack.url("/dashboard/#review"))
        other.locator("#login-form").get_by_label("Username").fill(boss)
        other.locator("#login-form").get_by_label("Password").fill(PASSWORD)
        other.locator("#login-form").get_by_role("button", name="Log in").click()
        other.get_by_label("Two-factor code").fill(totp.code_at(secret, totp.current_step() + 1))
        other.get_by_role("button", name="Verify").click()
        stale = other.get_by_role("table", name="Payments in review").get_by_role("row").filter(has_text=approved)
        expect(stale).to_be_visible()

        queue.get_by_role("row").filter(has_text=approved).get_by_role("button", name="Approve").click()
        expect(page.locator("#admin-status")).to_contain_text("is approved")
        expect(queue.get_by_role("row").filter(has_text=approved)).to_have_count(0)

        stale.get_by_role("button", name="Reject").click()  # decided meanwhile: 409, said in that row
        expect(stale.get_by_role("alert")).to_contain_text("review")
    finally:
        other.context.close()

    row = queue.get_by_role("row").filter(has_text=rejected)
    row.get_by_label("Note (for a rejection)").fill("card reported stolen")
    row.get_by_role("button", name="Reject").click()
    expect(page.locator("#admin-status")).to_contain_text("is rejected")
    expect(page.get_by_text("Nothing waits for review.")).to_be_visible()

    page.get_by_role("link", name="Users").click()
    page.get_by_label("Search users").fill(approved)
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("table", name="All users").get_by_role("link", name=approved).click()
    story = _detail(page)
    expect(story.get_by_role("table", name="Their payments")).to_contain_text("success")
    expect(story.locator("#detail-activity")).to_contain_text("payment approved")

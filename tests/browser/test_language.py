"""English and Bengali: the Language control switches every string and is remembered."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.journey import pay, register, unique

pytestmark = pytest.mark.browser
BENGALI_DIGIT = re.compile("[০-৯]")


def test_bengali_switches_the_pay_button_and_status_names_and_survives_a_reload(
    page: Any, stack: Any, screenshots: Path
) -> None:
    register(page, stack, unique("bangla"))
    page.get_by_label("Language").select_option("bn")
    expect(page.locator("html")).to_have_attribute("lang", "bn")
    expect(page.get_by_role("button", name="৳১০০ পরিশোধ করুন")).to_be_visible()
    expect(page.get_by_role("button", name="Pay ৳100")).to_have_count(0)
    expect(page.get_by_role("button", name="লগ আউট")).to_be_visible()
    page.screenshot(path=str(screenshots / "unpaid-bn.png"), full_page=True)

    pay(page, stack, button="৳১০০ পরিশোধ করুন")
    expect(page.get_by_role("status").filter(has_text="পেমেন্ট পাওয়া গেছে")).to_be_visible()
    payments = page.get_by_role("table", name="আপনার পেমেন্ট")
    expect(payments).to_contain_text("সফল")  # the status name, not "success"
    expect(payments).to_contain_text("৳")
    expect(payments.locator("tbody td").nth(3)).to_have_text(BENGALI_DIGIT)  # the date, in bn-BD digits
    expect(payments).not_to_contain_text("success")

    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "bn")
    expect(page.get_by_label("Language")).to_have_value("bn")
    expect(page.get_by_role("table", name="আপনার পেমেন্ট")).to_contain_text("সফল")
    expect(page.get_by_role("heading", name="ফাইল আপলোড করুন")).to_be_visible()
    page.screenshot(path=str(screenshots / "paid-bn.png"), full_page=True)

    page.get_by_label("Language").select_option("en")  # and back: the contract's English names
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("table", name="Your payments")).to_contain_text("success")
    expect(page.get_by_role("button", name="Upload")).to_be_visible()


def test_api_errors_are_shown_in_the_chosen_language(page: Any, stack: Any) -> None:
    page.goto(stack.url("/dashboard/"))
    page.get_by_label("Language").select_option("bn")
    form = page.locator("#login-form")
    form.get_by_label("ইউজারনেম").fill("nobody-here")
    form.get_by_label("পাসওয়ার্ড").fill("wrong password")
    form.get_by_role("button", name="লগ ইন").click()
    expect(form.get_by_role("alert")).to_have_text("ইউজারনেম বা পাসওয়ার্ড ভুল।")
    expect(page).to_have_title("পেইড আপলোড")

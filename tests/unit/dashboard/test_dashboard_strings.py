"""The dashboard's one table of strings against its markup and script: nothing untranslated."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from chalicelib.dashboard.assets import STATIC_DIR

# Elements whose text is not shown as words (the module script) or is a code sample.
SILENT = {"script", "style"}


def _strings() -> dict[str, dict[str, str]]:
    source = (STATIC_DIR / "i18n.js").read_text(encoding="utf-8")
    table = re.search(r"// STRINGS-BEGIN\nconst STRINGS = (\{.*?\});\n// STRINGS-END", source, re.DOTALL)
    assert table, "i18n.js must keep its table between the STRINGS-BEGIN/END markers"
    return json.loads(table.group(1))


class _Markup(HTMLParser):
    """Collects data-i18n keys, and text nodes whose element carries no key."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict[str, str | None]] = []
        self.keys: list[str] = []
        self.untranslated: list[str] = []
        self.english: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        attributes["_tag"] = tag
        for name in ("data-i18n", "data-i18n-label"):
            if attributes.get(name):
                self.keys.append(str(attributes[name]))
        if tag not in {"input", "link", "meta", "br", "img"}:  # void elements never close
            self.stack.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()["_tag"] != tag:
            pass

    def handle_data(self, data: str) -> None:
        text = data.strip()
        if not text or not self.stack or self.stack[-1]["_tag"] in SILENT:
            return
        key = self.stack[-1].get("data-i18n")
        if key:
            self.english[str(key)] = text
        else:
            self.untranslated.append(text)


@pytest.fixture(scope="module")
def markup() -> _Markup:
    parser = _Markup()
    parser.feed((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    return parser


def test_both_languages_have_the_same_keys_and_no_empty_string() -> None:
    strings = _strings()
    assert set(strings) == {"en", "bn"}
    assert set(strings["en"]) == set(strings["bn"])
    assert all(value.strip() for language in strings.values() for value in language.values())


def test_placeholders_agree_between_languages() -> None:
    strings = _strings()
    for key, english in strings["en"].items():
        assert set(re.findall(r"\{\w+\}", english)) == set(re.findall(r"\{\w+\}", strings["bn"][key])), key


def test_every_visible_text_in_the_page_has_a_key_in_both_languages(markup: _Markup) -> None:
    strings = _strings()
    assert markup.untranslated == []
    assert markup.keys and set(markup.keys) <= set(strings["en"]) & set(strings["bn"])


def test_the_markups_english_is_the_tables_english(markup: _Markup) -> None:
    """The page reads right before the script runs, and English keeps the contract's names."""
    english = _strings()["en"]
    assert {key: english[key] for key in markup.english} == markup.english
    for name in ("Register", "Log in", "Log out", "Pay ৳100", "Upload", "Export CSV", "Change password", "Delete"):
        assert name in english.values(), name
    assert "per day" in english["chart.label"] and "per day" in _strings()["bn"]["chart.label"]
    assert "Language" in _strings()["bn"]["language"]  # the control keeps its name in Bengali


def test_every_key_the_script_asks_for_exists() -> None:
    strings = _strings()["en"]
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    prefixes = {key.split(".")[0] for key in strings if "." in key}
    dotted = {k for k in re.findall(r'"([a-z_]+\.[a-z_]+)"', script) if k.split(".")[0] in prefixes}
    called = set(re.findall(r'\b(?:t|banner|signedOut)\(\s*"([a-z_.]+)"', script))
    asked = dotted | called
    assert {"welcome", "session_ended", "upload.choose", "chart.label"} <= asked
    assert asked <= set(strings), sorted(asked - set(strings))


def test_every_status_and_action_has_a_name() -> None:
    from chalicelib.core import activity
    from chalicelib.staff import admin

    strings = _strings()["bn"]
    for status in (*admin.PAYMENT_STATUSES, *admin.FILE_STATUSES):
        assert f"status.{status}" in strings, status
    for action in activity.ACTIONS:
        assert f"act.{action}" in strings, action

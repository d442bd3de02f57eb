"""The README's pictures: each one is in docs/screenshots and is taken by a browser test, so
`make screenshots` refreshes every one of them; no picture lies there unshown."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def _shown() -> list[str]:
    return re.findall(r"\]\(docs/screenshots/([\w.-]+\.png)\)", (ROOT / "README.md").read_text(encoding="utf-8"))


def _taken() -> set[str]:
    sources = (path.read_text(encoding="utf-8") for path in (ROOT / "tests" / "browser").glob("test_*.py"))
    return {name for source in sources for name in re.findall(r'screenshots / "([\w.-]+\.png)"', source)}


def test_every_view_the_readme_shows_is_in_docs_screenshots() -> None:
    shown = _shown()
    assert len(shown) >= 10 and len(set(shown)) == len(shown)
    missing = [name for name in shown if not (SCREENSHOTS / name).is_file()]
    assert missing == [], f"make screenshots (or run the browser test that takes them) for {missing}"


def test_every_picture_is_taken_by_a_browser_test_and_shown() -> None:
    assert set(_shown()) <= _taken(), sorted(set(_shown()) - _taken())
    assert {path.name for path in SCREENSHOTS.glob("*.png")} <= set(_shown())

"""The README stays a short front door, and every relative link in it and in docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 220

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(?P<text>.+?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`+([^`]*)`+")
# [text](target) and ![alt](target), with an optional "title"; nested brackets in the text are rare here.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks (a link or `#` there is code, not Markdown)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower-cased, punctuation dropped, spaces to hyphens."""
    text = INLINE_CODE.sub(r"\1", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text stays, its target goes
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"\*\*|__|\*", "", text)  # emphasis markers (a single `_` stays: snake_case names)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor GitHub gives `page`'s headings, repeated ones numbered `-1`, `-2`, …"""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match["text"])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    text = "\n".join(INLINE_CODE.sub("", line) for line in _prose(page.read_text(encoding="utf-8")))
    return [m["target"] for m in LINK.finditer(text) if not EXTERNAL.match(m["target"])]


def broken_links(page: Path) -> list[str]:
    """`target: what is wrong` for each relative link of `page` to a missing file or heading."""
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / unquote(path)).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no file {destination}")
        elif anchor and destination.suffix == ".md" and unquote(anchor) not in anchors(destination):
            broken.append(f"{target}: no heading with the anchor #{anchor} in {destination}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_is_a_short_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/, keep it a front door"


def test_the_readme_links_into_every_page_of_docs() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in relative_links(ROOT / "README.md")}
    unlinked = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert unlinked == [], "the README's read-on list should name every page in docs/"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Hostile input and the edge's headers", "hostile-input-and-the-edges-headers"),
        ("Hostile `.docx`", "hostile-docx"),
        ("IAM: who may touch what", "iam-who-may-touch-what"),
        (
            "The local stack: many users at once, data kept across restarts",
            "the-local-stack-many-users-at-once-data-kept-across-restarts",
        ),
        ("1. Secrets (once per stage)", "1-secrets-once-per-stage"),
        ("Api5xxRate", "api5xxrate"),
        ("**Bold** and [a link](x.md) and `code_name`", "bold-and-a-link-and-code_name"),
    ],
)
def test_anchors_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# There\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/there.md) [ok](docs/there.md#a-section) [ok](#here) [web](https://example.com/x)\n"
        "`[in code](nowhere.md)`\n```\n[in a block](nowhere.md)\n```\n"
        "# Here\n[gone](docs/missing.md) [no anchor](docs/there.md#nothing) ![no picture](docs/none.png)\n",
        encoding="utf-8",
    )
    broken = broken_links(page)
    assert [entry.split(":")[0] for entry in broken] == ["docs/missing.md", "docs/there.md#nothing", "docs/none.png"]

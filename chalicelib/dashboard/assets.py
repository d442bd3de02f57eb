"""The browser dashboard's files, shipped inside the Lambda package (no CDN, works offline)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from chalicelib.core import errors

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(html|js|css|svg)$")


@functools.lru_cache(maxsize=32)
def asset(name: str) -> tuple[str, str]:
    """(text, content type) of one dashboard file; names are allow-listed, never paths."""
    if not SAFE_NAME.match(name) or not (STATIC_DIR / name).is_file():
        raise errors.NotFound("No such dashboard file.")
    return (STATIC_DIR / name).read_text(encoding="utf-8"), CONTENT_TYPES[Path(name).suffix]

"""Fixtures the payment tests share."""

from __future__ import annotations

import pytest

from chalicelib.payments import settlement


@pytest.fixture
def every_return_is_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    """No 10 s search window, so each return asks the gateway; the window has its own tests."""
    monkeypatch.setattr(settlement, "SEARCH_WINDOW_SECONDS", 0)

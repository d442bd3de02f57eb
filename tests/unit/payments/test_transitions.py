"""The transition rule (docs/money.md "Transitions", `settlement.transition`), row by row, without AWS."""

from __future__ import annotations

import pytest

from chalicelib.payments.settlement import Occasion, Status, Verdict, transition

S, F, C, E = Status.SUCCESS, Status.FAILED, Status.CANCELLED, Status.EXPIRED
OCCASIONS = (Occasion.SUCCESS_RETURN, Occasion.FAIL_RETURN, Occasion.CANCEL_RETURN, Occasion.CHECK, Occasion.EXPIRY)
# An `initiated` payment: what each verdict moves it to, per occasion (None: no change).
FROM_INITIATED = {
    Verdict.PAID: (S, S, S, S, S),
    Verdict.FAILED: (None, F, C, F, F),
    Verdict.NOT_PAID: (None, None, C, None, E),
    Verdict.MISMATCH: (None, None, None, None, None),
}


@pytest.mark.parametrize(
    ("verdict", "occasion", "expected"),
    [
        (verdict, occasion, expected)
        for verdict, row in FROM_INITIATED.items()
        for occasion, expected in zip(OCCASIONS, row, strict=True)
    ],
)
def test_an_initiated_payment_moves_as_the_table_says(
    verdict: Verdict, occasion: Occasion, expected: Status | None
) -> None:
    assert transition(Status.INITIATED, verdict, occasion) == expected


@pytest.mark.parametrize("verdict", list(Verdict))
@pytest.mark.parametrize("occasion", OCCASIONS)
def test_success_is_final(verdict: Verdict, occasion: Occasion) -> None:
    assert transition(Status.SUCCESS, verdict, occasion) is None


@pytest.mark.parametrize("status", [F, C, E])
@pytest.mark.parametrize("verdict", list(Verdict))
@pytest.mark.parametrize("occasion", OCCASIONS)
def test_an_ended_payment_moves_only_to_success_on_a_verified_payment(
    status: Status, verdict: Verdict, occasion: Occasion
) -> None:
    """Money taken after a fail, cancel or expiry is never lost; nothing else moves it."""
    assert transition(status, verdict, occasion) == (S if verdict is Verdict.PAID else None)

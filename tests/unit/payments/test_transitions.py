"""The transition rule (docs/money.md "Transitions", `settlement.transition`), row by row, without AWS."""

from __future__ import annotations

import pytest

from chalicelib.payments.settlement import Occasion, Status, Verdict, transition

S, R, F, C, E = Status.SUCCESS, Status.REVIEW, Status.FAILED, Status.CANCELLED, Status.EXPIRED
OCCASIONS = (Occasion.SUCCESS_RETURN, Occasion.FAIL_RETURN, Occasion.CANCEL_RETURN, Occasion.CHECK, Occasion.EXPIRY)
# An `initiated` payment: what each verdict moves it to, per occasion (None: no change).
FROM_INITIATED = {
    Verdict.PAID: (S, S, S, S, S),
    Verdict.RISKY: (R, R, R, R, R),
    Verdict.FAILED: (None, F, C, F, F),
    Verdict.NOT_PAID: (None, None, C, None, E),
    Verdict.MISMATCH: (None, None, None, None, E),
}
GRANTS = {Verdict.PAID: S, Verdict.RISKY: R}


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


@pytest.mark.parametrize("status", [S, R])
@pytest.mark.parametrize("verdict", list(Verdict))
@pytest.mark.parametrize("occasion", OCCASIONS)
def test_success_and_review_are_left_alone(status: Status, verdict: Verdict, occasion: Occasion) -> None:
    """Only a superuser's decision moves a payment out of review; nothing moves a success."""
    assert transition(status, verdict, occasion) is None


@pytest.mark.parametrize("status", [F, C, E])
@pytest.mark.parametrize("verdict", list(Verdict))
@pytest.mark.parametrize("occasion", OCCASIONS)
def test_an_ended_payment_moves_only_on_a_verified_payment(
    status: Status, verdict: Verdict, occasion: Occasion
) -> None:
    """Money taken after a fail, cancel or expiry is never lost (a risky one waits for review)."""
    assert transition(status, verdict, occasion) == GRANTS.get(verdict)


@pytest.mark.parametrize("verdict", list(Verdict))
@pytest.mark.parametrize("occasion", OCCASIONS)
def test_a_rejected_payment_stays_failed_whatever_the_gateway_says(verdict: Verdict, occasion: Occasion) -> None:
    assert transition(F, verdict, occasion, rejected=True) is None

"""Recovery codes: count, entropy, uniqueness, and a digest that forgives typing but not changes."""

from __future__ import annotations

from chalicelib.accounts import recovery_codes as recovery


def test_ten_distinct_codes_of_80_bits() -> None:
    codes = recovery.new_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(code.replace("-", "")) == 16 for code in codes)


def test_digest_ignores_case_and_separators_only() -> None:
    code = recovery.new_codes()[0]
    assert recovery.digest(code.lower().replace("-", " ")) == recovery.digest(code)
    assert code not in recovery.digest(code)
    changed = ("B" if code[0] == "A" else "A") + code[1:]
    assert recovery.digest(changed) != recovery.digest(code)

"""Domain code of the paid-upload service; shipped to Lambda with app.py.

One package per domain, imports pointing down only: `app.py` -> accounts, files, payments,
staff, leaving, dashboard (staff and leaving also reach accounts, files and payments; files and
payments name the accounts' caller) -> `core`, which imports no domain package. Enforced by
tests/unit/test_layers.py.
"""

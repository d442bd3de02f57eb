"""Staff: the admin API over every feature's records, the CSV export and the figures.

Owns: who may see and change what, the staff lists, verify, reprocess and staff roles
(`admin`); the accountant's CSV (`export`); the admin's figures, read from the counters that
`chalicelib.core.counters` writes (`stats`).

May import: `chalicelib.core`, and the read helpers of the features it oversees:
`chalicelib.accounts` (`user_view`, `directory`; `mfa`: the second factor staff routes ask for),
`chalicelib.files` (`uploads`), `chalicelib.payments`. Nothing imports staff but `app.py` (and the local tools).
"""

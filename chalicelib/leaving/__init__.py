"""Leaving: everything held about a user, handed over (`export`), and the account's end (`deletion`).

Owns: `GET /api/me/export/` and `DELETE /api/me/`. Both reach across features (the account,
its payments, its files and objects, its activity), which is why they sit above them rather
than in any one of them. Rules and their reasons: docs/accounts.md, "Leaving".

May import: `chalicelib.core`, and the features whose records it reads or ends:
`chalicelib.accounts`, `chalicelib.files`, `chalicelib.payments`.
Nothing imports leaving but `app.py`.
"""

"""Accounts: who is calling and how they prove it.

Owns: register, login, refresh, logout, password change and `Principal`, the authenticated
caller (`accounts`); bcrypt hashing (`passwords`); JWTs and their revocation (`tokens`);
password-attempt limits (`ratelimit`); names and prefix search of users for staff lists
(`directory`); password reset by email (`recovery`); verified email (`verification`); the
tokens of emailed links (`links`); TOTP codes per RFC 6238 (`totp`) and hashed one-time
recovery codes (`recovery_codes`); the second factor's enrolment, code step of log-in and the
staff routes' check (`mfa`).

May import: `chalicelib.core`, and `chalicelib.mail` to queue and compose its emails. No other
domain package: files and payments name `accounts.Principal` (in type hints), staff reads `user_view` and `directory`.
"""

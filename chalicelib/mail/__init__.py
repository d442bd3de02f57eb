"""Mail: the emails the service sends and the one way they leave, exactly once per dedupe key.

Owns: the templates in English and Bengali, plain text and HTML (`messages`); putting a job on
the mail queue (`jobs`); the sender backends, a local outbox of `.eml` files or SES v2
(`senders`); and the worker's state machine that makes SQS's at-least-once delivery send each
email once (`delivery`).

May import: `chalicelib.core`. Domain packages build their emails with `messages` and enqueue
jobs with `jobs`; `app.py` hands each job kind to the domain function that composes it.
"""

"""Mail: the emails the service sends and the one way they leave, exactly once per dedupe key.

Owns: the templates in English and Bengali, plain text and HTML (`messages`); writing a job to the
outbox with the change that causes it, and relaying the outbox's stream to the mail queue (`jobs`);
the sender backends, a local outbox of `.eml` files or SES v2
(`senders`); and the worker's state machine that makes SQS's at-least-once delivery send each
email once (`delivery`).

May import: `chalicelib.core`. Domain packages build their emails with `messages` and add
jobs to their transactions with `jobs`; `app.py` hands each job kind to the domain function that composes it.
"""

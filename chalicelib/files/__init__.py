"""Files: uploads straight to S3 and the worker that counts their words.

Owns: presigned POSTs, the File lifecycle and the owners' views (`uploads`); the upload
queue's message format (`upload_events`); the SQS worker (`worker`); the pure, streaming word
counter (`wordcount`).

May import: `chalicelib.core`, and `chalicelib.accounts` for the caller's type (`Principal`,
type hints only). Never payments, staff or dashboard.
"""

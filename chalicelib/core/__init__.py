"""The shared plumbing every route uses; no feature of its own.

Owns: the HTTP edge (`web`), settings and secrets (`config`), lazy botocore clients (`aws`),
every table (`models`), transaction helpers (`db`), the contract's errors (`errors`), logs,
metrics and the invocation around them (`logs`, `metrics`, `observability`), time and ids
(`clock`), signed cursors (`pagination`), body fields (`validation`), lazy imports and the
cold-start collector pause (`imports`, `coldstart`), readiness (`health`), the append-only
activity log every feature writes (`activity`) and the sharded statistics counters every
feature's transactions add to (`counters`).

May import: only `chalicelib.core` itself. No domain package (accounts, files, payments,
staff, dashboard): they import core, never the reverse (tests/unit/test_layers.py).
"""

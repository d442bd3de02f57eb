"""Benchmarks (not tests): `make bench` runs them all; figures are quoted in docs/performance.md."""

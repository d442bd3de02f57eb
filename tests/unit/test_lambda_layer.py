"""infra/layer.py reads a library's glibc needs as the loader does: weak references do not count."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import cbor2

from infra.layer import LAMBDA_GLIBC, glibc_needed


def _library(package: object) -> bytes:
    [library] = Path(str(getattr(package, "__file__", ""))).parent.glob("*.so")
    return library.read_bytes()


def test_cbor2_tagged_for_glibc_2_28_needs_2_14_since_its_newer_references_are_weak() -> None:
    assert glibc_needed(_library(cbor2)) == (2, 14)


def test_a_library_built_for_a_newer_glibc_than_lambdas_is_caught() -> None:
    """This venv's bcrypt is the manylinux_2_34 wheel (the layer gets Chalice's manylinux2014 one)."""
    assert glibc_needed(_library(bcrypt)) == (2, 34) > LAMBDA_GLIBC

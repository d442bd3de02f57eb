"""`.local/`: what `make run` keeps between runs (emulator snapshot, JWT signing key).

The snapshot file is one JSON header line, then a pickle of the emulator's backends. The
header is checked before anything is unpickled: state written by another snapshot format,
another moto version or another table schema is refused as a whole (never half-loaded),
with a message naming `FRESH=1`. Writes go to a temporary file that is fsynced and renamed
over the old one, so a crash leaves either the previous snapshot or the new one.

Only ever load a snapshot this machine wrote: pickle runs code from the file it reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 2  # 2: the header names the services the snapshot holds
SNAPSHOT_NAME = "emulator.snapshot"
SIGNING_KEY_NAME = "jwt-signing-key"
DYNAMODB_DIR_NAME = "dynamodb"
ENDPOINTS_NAME = "endpoints.json"


class IncompatibleState(RuntimeError):
    """The saved state cannot be loaded by this version; nothing was loaded."""


def schema_fingerprint() -> str:
    """A digest of every table's keys and indexes: a changed schema makes old items unusable."""
    from chalicelib.core.models import ALL_MODELS

    tables = {model.Meta.table_name: model._get_schema() for model in ALL_MODELS}
    return hashlib.sha256(json.dumps(tables, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _expected_header(services: tuple[str, ...]) -> dict[str, Any]:
    import moto

    return {"format": FORMAT, "moto": moto.__version__, "schema": schema_fingerprint(), "services": list(services)}


@dataclass(frozen=True)
class StateDir:
    path: Path

    @property
    def snapshot_path(self) -> Path:
        return self.path / SNAPSHOT_NAME

    @property
    def dynamodb_path(self) -> Path:
        """DynamoDB Local's database (one SQLite file)."""
        return self.path / DYNAMODB_DIR_NAME

    def write_endpoints(self, endpoints: dict[str, str]) -> None:
        """Where the running stack serves each AWS service, for `make user` and `make recount`."""
        self._ensure()
        _write_atomically(self.path / ENDPOINTS_NAME, json.dumps(endpoints, sort_keys=True).encode())

    def endpoints(self) -> dict[str, str]:
        path = self.path / ENDPOINTS_NAME
        return json.loads(path.read_text()) if path.exists() else {}

    def snapshot_holds(self, service: str) -> bool:
        """Does the kept emulator snapshot hold this service's state (whatever its version)?"""
        if not self.snapshot_path.exists():
            return False
        with self.snapshot_path.open("rb") as file:
            try:
                header = json.loads(file.readline())
            except ValueError:
                return False
        return isinstance(header, dict) and service in header.get("services", ["dynamodb", "s3", "sqs"])

    def wipe(self) -> None:
        """`FRESH=1`: forget everything kept so far."""
        shutil.rmtree(self.path, ignore_errors=True)

    def _ensure(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def signing_key(self) -> str:
        """The local JWT signing key, created once, so tokens outlive a restart."""
        self._ensure()
        key_path = self.path / SIGNING_KEY_NAME
        if not key_path.exists():
            _write_atomically(key_path, secrets.token_urlsafe(48).encode())
        return key_path.read_text().strip()

    def write_snapshot(self, payload: bytes, services: tuple[str, ...]) -> int:
        """Replace the snapshot atomically; returns the bytes written."""
        self._ensure()
        header = json.dumps(_expected_header(services), sort_keys=True).encode() + b"\n"
        _write_atomically(self.snapshot_path, header + payload)
        return len(header) + len(payload)

    def read_snapshot(self, services: tuple[str, ...]) -> bytes | None:
        """The pickled payload, or None when there is none; raises IncompatibleState."""
        if not self.snapshot_path.exists():
            return None
        with self.snapshot_path.open("rb") as file:
            first_line = file.readline()
            payload = file.read()
        try:
            header = json.loads(first_line)
        except ValueError:
            header = None
        expected = _expected_header(services)
        if header != expected:
            raise IncompatibleState(_refusal(self.snapshot_path, header, expected))
        return payload


def refusal_for_unreadable(path: Path, error: Exception) -> IncompatibleState:
    return IncompatibleState(
        f"The local state in {path} cannot be read ({type(error).__name__}: {error}). Nothing was loaded. "
        "Start empty with `make run FRESH=1` (this deletes it)."
    )


def _refusal(path: Path, found: Any, expected: dict[str, Any]) -> str:
    if isinstance(found, dict):
        differs = ", ".join(f"{key} {found.get(key)!r} (this version: {expected[key]!r})" for key in expected)
        what = f"it was written with {differs}"
    else:
        what = "it is not a snapshot this project wrote"
    return (
        f"The local state in {path} is incompatible with this version: {what}. Nothing was loaded. "
        "Start empty with `make run FRESH=1` (this deletes it)."
    )


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)

"""The embedded AWS emulator (moto) made to behave like AWS under load and across restarts.

- **Atomic DynamoDB.** moto checks a transaction's conditions, writes, and rolls a cancelled
  one back by restoring a copy of every table it touched, with no lock: under threads a
  loser's rollback erases the winner's committed write, and iterating tables while another
  request writes raises `dictionary changed size during iteration` (a 500). DynamoDB applies
  each request atomically, so every DynamoDB request here holds one lock. `make run`, every
  test stack and the unit tests' `atomic_dynamodb` fixture use this one switch.
- **Bursts queue** (`local.servers.BurstWSGIServer`).
- **Snapshots.** `capture()` pickles the DynamoDB, S3 and SQS backends while no request is
  inside the emulator (a shared/exclusive gate around the WSGI app), so a snapshot is one
  consistent moment across the three services; `Emulator` restores the last one before it
  listens, snapshots every few seconds while anything happened, and once more on stop.

None of this runs when `AWS_ENDPOINT_URL` points elsewhere: then no emulator starts.
"""

from __future__ import annotations

import functools
import io
import logging
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.backends import get_backend
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.s3.models import s3_backends

from chalicelib.core import logs
from local.servers import BurstWSGIServer
from local.state import StateDir, refusal_for_unreadable

log = logs.get("emulator")
SERVICES = ("dynamodb", "s3", "sqs")  # everything the app stores; the rest is recreated by bootstrap
_DYNAMODB_LOCK = threading.RLock()


def make_dynamodb_atomic() -> Callable[[], None]:
    """Serialise moto's DynamoDB request handling (in-process mocks and servers alike); returns the undo."""
    original = DynamoHandler.call_action
    if getattr(original, "atomic", False):
        return lambda: None

    @functools.wraps(original)
    def serialised(handler: DynamoHandler) -> Any:
        with _DYNAMODB_LOCK:
            return original(handler)

    serialised.atomic = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = serialised  # type: ignore[method-assign]
    return lambda: setattr(DynamoHandler, "call_action", original)


class SharedExclusiveLock:
    """Many requests at once, or one snapshot alone; a waiting snapshot goes before new requests."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._sharing = 0
        self._exclusive = False
        self._waiting_exclusive = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not (self._exclusive or self._waiting_exclusive))
            self._sharing += 1
        try:
            yield
        finally:
            with self._condition:
                self._sharing -= 1
                self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._waiting_exclusive += 1
            self._condition.wait_for(lambda: not (self._exclusive or self._sharing))
            self._waiting_exclusive -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


class Gate:
    """WSGI middleware: requests share the emulator, a snapshot has it alone; after `close()`
    every request answers 503, so nothing is acknowledged that the last snapshot lacks."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = SharedExclusiveLock()
        self.changed = threading.Event()
        self.closed = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock.shared():
            if self.closed:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"the emulator is stopping"]
            self.changed.set()
            # moto's responses are complete byte strings: materialise them inside the lock.
            return list(self.app(environ, start_response))


class _LocksAsNew(pickle.Pickler):
    """Locks cannot be pickled; a restored object gets a fresh, unlocked one."""

    _kinds: dict[type, Callable[[], Any]] = {  # noqa: RUF012
        type(threading.Lock()): threading.Lock,
        type(threading.RLock()): threading.RLock,
    }

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        factory = self._kinds.get(type(obj))
        return (factory, ()) if factory else NotImplemented


def capture() -> bytes:
    """Every account's and region's backend of SERVICES, pickled (call with no request running)."""
    state: dict[str, Any] = {
        service: {account: dict(regions) for account, regions in get_backend(service).items()}  # type: ignore[call-overload]
        for service in SERVICES
    }
    # Which account owns a bucket name lives beside S3's backends (presigned URLs name no account).
    state["s3_bucket_accounts"] = dict(s3_backends.bucket_accounts)
    buffer = io.BytesIO()
    _LocksAsNew(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buffer.getvalue()


def restore(payload: bytes) -> None:
    """Unpickle everything first, then install: a snapshot is loaded whole or not at all."""
    state = pickle.loads(payload)  # noqa: S301 - our own file in .local/ (see local.state)
    for service in SERVICES:
        live = get_backend(service)  # type: ignore[call-overload]
        for account, regions in state[service].items():
            for region, backend in regions.items():
                live[account][region] = backend
    s3_backends.bucket_accounts.update(state["s3_bucket_accounts"])


class Emulator:
    """moto's server on a deep backlog, with atomic DynamoDB and (with a StateDir) durable state."""

    def __init__(self, host: str, port: int, state: StateDir | None = None, snapshot_seconds: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.state = state
        self.snapshot_seconds = snapshot_seconds
        self.gate = Gate(DomainDispatcherApplication(create_backend_app))
        self._server: BurstWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._saving = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        """Restore the last snapshot (raises local.state.IncompatibleState), then listen."""
        make_dynamodb_atomic()
        if self.state is not None:
            payload = self.state.read_snapshot()
            if payload is not None:
                self._restore(payload)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = BurstWSGIServer(self.host, self.port, self.gate, handler=MotoRequestHandler)
        self.port = self._server.server_port
        self._spawn(self._server.serve_forever, "aws-emulator")
        if self.state is not None:
            self._spawn(self._snapshot_periodically, "aws-emulator-snapshots")
        return self

    def _restore(self, payload: bytes) -> None:
        assert self.state is not None
        started = time.perf_counter()
        try:
            restore(payload)
        except Exception as error:  # an unpicklable class moved, a truncated file...
            raise refusal_for_unreadable(self.state.snapshot_path, error) from error
        log.info(
            "emulator state restored",
            extra={"fields": {"bytes": len(payload), "ms": round((time.perf_counter() - started) * 1000)}},
        )

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def save(self) -> int:
        """Snapshot now (atomically replaced on disk); returns the bytes written."""
        assert self.state is not None
        with self._saving:
            self.gate.changed.clear()
            with self.gate.lock.exclusive():
                payload = capture()
            return self.state.write_snapshot(payload)

    def _snapshot_periodically(self) -> None:
        while not self._stopping.wait(self.snapshot_seconds):
            if self.gate.changed.is_set():
                try:
                    self.save()
                except Exception:  # a full disk must not stop the emulator; the next try may work
                    log.exception("emulator snapshot failed")

    def stop(self) -> None:
        """Last snapshot, then refuse requests and stop listening."""
        self._stopping.set()
        if self.state is not None:
            with self.gate.lock.exclusive():
                self.gate.closed = True
            written = self.save()
            log.info("emulator state saved", extra={"fields": {"bytes": written, "path": str(self.state.path)}})
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    """`python -m local.emulator`: the emulator in its own process (its own GIL: under a burst
    the API's threads and the emulator's no longer queue for one interpreter lock).

    Ctrl-C reaches the whole process group: it is ignored here, because the stack stops its
    workers first and then sends SIGTERM, which takes the last snapshot. If the stack dies
    without stopping us, we stop too.
    """
    import argparse
    import os
    import signal
    import sys
    from pathlib import Path

    from local.state import IncompatibleState

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--snapshot-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    state = StateDir(args.state_dir) if args.state_dir else None
    try:
        emulator = Emulator(args.host, args.port, state, args.snapshot_seconds).start()
    except IncompatibleState as refused:
        print(refused, file=sys.stderr, flush=True)
        return 2
    parent = os.getppid()
    while not stopping.wait(1):
        if os.getppid() != parent:
            break
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

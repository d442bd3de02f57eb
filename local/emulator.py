"""The embedded AWS emulator (moto) made to behave like AWS under load and across restarts.

It serves S3 and SQS (and, with `EMULATOR=moto`, DynamoDB too: the fallback for a machine
without Java; otherwise DynamoDB is AWS's DynamoDB Local, `local.dynamodb_local`).

- **Atomic DynamoDB** (moto fallback only). moto checks a transaction's conditions, writes,
  and rolls a cancelled one back by restoring a copy of every table it touched, with no lock:
  under threads a loser's rollback erases the winner's committed write. DynamoDB applies each
  request atomically, so every DynamoDB request here holds one lock (`make_dynamodb_atomic`,
  also used by the unit tests' `atomic_dynamodb` fixture).
- **Bursts queue** (`local.servers.BurstWSGIServer`).
- **Durable per write.** moto keeps everything in memory. A request that changes state is
  answered only once a snapshot taken after it is on disk (group commit: one snapshot covers
  every write that finished while the previous one was being written), so a `kill -9`
  loses nothing that was acknowledged. `capture()` pickles the backends while no request is
  inside the emulator (a shared/exclusive gate around the WSGI app), so a snapshot is one
  consistent moment across the services; `Emulator` restores the last one before it listens.

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
from moto.sqs.models import Queue

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

    def acquire_shared(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not (self._exclusive or self._waiting_exclusive))
            self._sharing += 1

    def release_shared(self) -> None:
        with self._condition:
            self._sharing -= 1
            self._condition.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

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


# Requests that change nothing a restart must keep: answered without waiting for a snapshot.
# A lost DeleteMessage or visibility change only means a redelivery, which every handler
# already survives (SQS delivers at least once).
_NEEDS_NO_SNAPSHOT = frozenset(
    {
        "ReceiveMessage",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListQueues",
        "ListQueueTags",
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "DescribeTable",
        "ListTables",
        "DescribeTimeToLive",
        "GetParameter",
        "GetParameters",
    }
)


def needs_snapshot(environ: dict[str, Any]) -> bool:
    """Does this request change state that must survive a `kill -9` once it is answered?"""
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return False
    action = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
    return action not in _NEEDS_NO_SNAPSHOT


_holding = threading.local()  # the Gate whose shared lock this request thread holds


def release_gate_while_long_polling() -> None:
    """A ReceiveMessage that waits for messages (long polling) waits outside the gate, so a
    snapshot never queues behind a poll: it changes nothing while it only waits."""
    original = Queue.wait_for_messages
    if getattr(original, "outside_gate", False):
        return

    @functools.wraps(original)
    def wait_outside(queue: Queue, timeout: int) -> None:
        gate: Gate | None = getattr(_holding, "gate", None)
        if gate is None:
            original(queue, timeout)
            return
        gate.lock.release_shared()
        try:
            original(queue, timeout)
        finally:
            gate.lock.acquire_shared()

    wait_outside.outside_gate = True  # type: ignore[attr-defined]
    Queue.wait_for_messages = wait_outside  # type: ignore[method-assign,assignment]


class Gate:
    """WSGI middleware: requests share the emulator, a snapshot has it alone.

    With `durable`, a request that changes state is answered only once a snapshot that
    includes it is on disk (`commit` writes it); after `close()` every request answers 503,
    so nothing is acknowledged that the last snapshot lacks.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], *, durable: bool) -> None:
        self.app = app
        self.durable = durable
        self.lock = SharedExclusiveLock()
        self.closed = False
        self._progress = threading.Condition()
        self._written = 0  # changes so far
        self._saved = 0  # changes that the newest snapshot on disk holds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock.shared():
            if self.closed:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"the emulator is stopping"]
            _holding.gate = self
            try:
                # moto's responses are complete byte strings: materialise them inside the lock.
                answer = list(self.app(environ, start_response))
            finally:
                _holding.gate = None
            changed = needs_snapshot(environ)
            if changed:
                with self._progress:
                    self._written += 1
                    ticket = self._written
                    self._progress.notify_all()
        if changed and self.durable:
            with self._progress:
                self._progress.wait_for(lambda: self._saved >= ticket or self.closed)
        return answer

    def wait_for_changes(self, timeout: float) -> bool:
        with self._progress:
            return self._progress.wait_for(lambda: self._written > self._saved, timeout=timeout)

    def commit(self, save: Callable[[bytes], object]) -> None:
        """Capture with no request inside, write, then answer every request the snapshot holds."""
        with self.lock.exclusive():
            with self._progress:
                holds = self._written
            payload = capture()
        save(payload)
        with self._progress:
            self._saved = max(self._saved, holds)
            self._progress.notify_all()

    def close(self) -> None:
        with self.lock.exclusive():
            self.closed = True
        with self._progress:
            self._progress.notify_all()


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


_services: tuple[str, ...] = SERVICES  # what this process serves (Emulator sets it)


def capture() -> bytes:
    """Every account's and region's backend of the served services, pickled (call with no request running)."""
    state: dict[str, Any] = {
        service: {account: dict(regions) for account, regions in get_backend(service).items()}  # type: ignore[call-overload]
        for service in _services
    }
    # Which account owns a bucket name lives beside S3's backends (presigned URLs name no account).
    state["s3_bucket_accounts"] = dict(s3_backends.bucket_accounts)
    buffer = io.BytesIO()
    _LocksAsNew(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buffer.getvalue()


def restore(payload: bytes) -> None:
    """Unpickle everything first, then install: a snapshot is loaded whole or not at all."""
    state = pickle.loads(payload)  # noqa: S301 - our own file in .local/ (see local.state)
    for service in _services:
        live = get_backend(service)  # type: ignore[call-overload]
        for account, regions in state.get(service, {}).items():
            for region, backend in regions.items():
                live[account][region] = backend
    s3_backends.bucket_accounts.update(state["s3_bucket_accounts"])


class Emulator:
    """moto's server on a deep backlog, with atomic DynamoDB and (with a StateDir) state that is
    on disk before a change is acknowledged."""

    def __init__(
        self, host: str, port: int, state: StateDir | None = None, services: tuple[str, ...] = SERVICES
    ) -> None:
        global _services  # noqa: PLW0603 - one emulator per process
        _services = services
        self.host = host
        self.port = port
        self.state = state
        self.services = services
        self.gate = Gate(DomainDispatcherApplication(create_backend_app), durable=state is not None)
        self._server: BurstWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        """Restore the last snapshot (raises local.state.IncompatibleState), then listen."""
        make_dynamodb_atomic()
        release_gate_while_long_polling()
        if self.state is not None:
            payload = self.state.read_snapshot(self.services)
            if payload is not None:
                self._restore(payload)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = BurstWSGIServer(self.host, self.port, self.gate, handler=MotoRequestHandler)
        self.port = self._server.server_port
        self._spawn(self._server.serve_forever, "aws-emulator")
        if self.state is not None:
            self._spawn(self._commit_continuously, "aws-emulator-snapshots")
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

    def _save(self, payload: bytes) -> None:
        assert self.state is not None
        self.state.write_snapshot(payload, self.services)

    def _commit_continuously(self) -> None:
        """Group commit: whenever something changed, one snapshot for all of it."""
        while not self._stopping.is_set():
            if not self.gate.wait_for_changes(timeout=0.5):
                continue
            try:
                self.gate.commit(self._save)
            except Exception:  # a full disk: writers keep waiting (unacknowledged), we retry
                log.exception("emulator snapshot failed")
                self._stopping.wait(1)

    def stop(self) -> None:
        """Last snapshot, then refuse requests and stop listening."""
        self._stopping.set()
        for thread in self._threads[1:]:
            thread.join(timeout=10)
        if self.state is not None:
            self.gate.commit(self._save)
            log.info("emulator state saved", extra={"fields": {"path": str(self.state.path)}})
        self.gate.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._threads[0].join(timeout=10)


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

    from local import console
    from local.state import IncompatibleState

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--services", default=",".join(SERVICES), help="comma-separated, of " + ",".join(SERVICES))
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    state = StateDir(args.state_dir) if args.state_dir else None
    if state:
        console.route(state.path)  # its JSON log lines beside the stack's
    try:
        emulator = Emulator(args.host, args.port, state, tuple(args.services.split(","))).start()
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

"""`make run`: the whole local stack in the foreground; Ctrl-C stops all of it.

Parts (each honours the contract's environment variables):
- the AWS emulator (moto server on 127.0.0.1:4566; `local.emulator`, in a child process of
  its own), unless `AWS_ENDPOINT_URL` or `LOCALSTACK_HOST` points elsewhere; resources are
  created there if missing;
- the aamarPay sandbox emulator (127.0.0.1:8001), unless `AAMARPAY_BASE_URL` is set;
- the API and dashboard (Chalice's local server) on `API_PORT` (8000);
- the SQS worker and the scheduled jobs, run as Lambda would run them.

State lives in `.local/` (`LOCAL_STATE_DIR`): the emulator's tables, objects and queued
messages (restored at start, snapshotted every `SNAPSHOT_SECONDS` and on stop) and the JWT
signing key. `--fresh` (`make run FRESH=1`) deletes it first. Stopping lets the API answer
what it is answering and the worker finish its message, then takes the last snapshot.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from local import env
from local.servers import BurstHTTPServer
from local.state import IncompatibleState, StateDir

PROJECT_DIR = Path(__file__).resolve().parent.parent
STOP_WAIT_SECONDS = 30  # for a request being answered, or a message being processed, to finish


def _configure_environment(state: StateDir) -> dict[str, str]:
    """Fill in local defaults; returns which endpoints are external (not started here)."""
    env.apply_defaults()
    os.environ.setdefault("API_PORT", "8000")
    os.environ.setdefault("JWT_SIGNING_KEY", state.signing_key())
    external: dict[str, str] = {}
    if os.environ.get("AWS_ENDPOINT_URL"):
        external["aws"] = os.environ["AWS_ENDPOINT_URL"]
    if os.environ.get("AAMARPAY_BASE_URL"):
        external["aamarpay"] = os.environ["AAMARPAY_BASE_URL"]
    return external


def _quiet_http_logs() -> None:
    for name in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


class Stack:
    """Start and stop every part; usable from tests as well as from `make run`."""

    def __init__(
        self, *, schedule_seconds: float, visibility_timeout: int, state: StateDir, snapshot_seconds: float = 5.0
    ) -> None:
        self.schedule_seconds = schedule_seconds
        self.visibility_timeout = visibility_timeout
        self.state = state
        self.snapshot_seconds = snapshot_seconds
        self._stoppers: list[Any] = []
        self.server: Any = None

    def start(self) -> dict[str, str]:
        """Start every part; raises IncompatibleState before anything listens."""
        external = _configure_environment(self.state)
        _quiet_http_logs()
        where: dict[str, str] = {}
        if "aws" not in external:
            port = int(os.environ.get("EMULATOR_PORT", "4566"))
            emulator = _start_emulator(port, self.state, self.snapshot_seconds)
            self._stoppers.append(lambda: _stop_emulator(emulator))
            os.environ["AWS_ENDPOINT_URL"] = env.emulator_url()
            where["State"] = f"{self.state.path} (FRESH=1 starts empty)"
        where["AWS endpoint"] = os.environ["AWS_ENDPOINT_URL"] + ("" if "aws" not in external else " (external)")
        if "aamarpay" not in external:
            from local.sandbox import SandboxServer

            sandbox = SandboxServer(port=int(os.environ.get("SANDBOX_PORT", "8001")))
            sandbox.start()
            self._stoppers.append(sandbox.stop)
            os.environ["AAMARPAY_BASE_URL"] = sandbox.url
        where["aamarPay"] = os.environ["AAMARPAY_BASE_URL"] + ("" if "aamarpay" not in external else " (external)")

        from local import bootstrap

        created = bootstrap.ensure_all(visibility_timeout=self.visibility_timeout)
        self._start_background(created["queues"])
        self._create_server()
        where["API"] = f"http://localhost:{self.server.port}/api/"
        where["Dashboard"] = f"http://localhost:{self.server.port}/dashboard/"
        return where

    def _start_background(self, queue_urls: dict[str, str]) -> None:
        import app as application
        from chalicelib.core.config import settings
        from local.runner import Scheduler, SqsPoller

        config = settings()
        workers: list[Any] = [
            SqsPoller(queue_urls[config.upload_queue], application.process_upload_events, name="upload-worker"),
            SqsPoller(
                queue_urls[config.upload_dead_letter_queue],
                application.process_dead_upload_events,
                name="upload-dead-letters",
            ),
            Scheduler(
                application.reconcile_payments, name="reconcile-payments", interval_seconds=self.schedule_seconds
            ),
        ]
        for worker in workers:
            worker.start()
        self._stoppers.append(lambda: _stop_all(workers))

    def _create_server(self) -> None:
        from chalice.cli.factory import CLIFactory
        from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

        import app as application

        factory = CLIFactory(str(PROJECT_DIR))
        config = factory.create_config_obj(chalice_stage_name="local")
        host = os.environ.get("API_HOST", "127.0.0.1")
        # What chalice.local.create_local_server does, with our request handler.
        CustomLocalChalice.__bases__ = (LocalChalice, application.app.__class__)
        application.app.__class__ = CustomLocalChalice  # type: ignore[assignment]  # (as Chalice itself does)
        handler = _contract_errors_handler()
        self.server = LocalDevServer(
            application.app,
            config,
            host,
            int(os.environ["API_PORT"]),
            handler_cls=handler,
            server_cls=BurstHTTPServer,
        )
        self._stoppers.append(lambda: _close_when_answered(self.server.server, handler))

    def serve_forever(self) -> None:
        self.server.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Newest part first: the API stops taking requests, workers finish, the emulator saves."""
        if self.server is not None:
            threading.Thread(target=self.server.shutdown, daemon=True).start()
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception as error:  # keep stopping the rest
                print(f"stop failed: {error}", file=sys.stderr)
        self._stoppers.clear()


def _start_emulator(port: int, state: StateDir, snapshot_seconds: float) -> subprocess.Popen[bytes]:
    """`local.emulator` in its own process; returns once it listens (raises IncompatibleState
    if it refused the kept state: its message is already on stderr)."""
    command = [sys.executable, "-m", "local.emulator", "--port", str(port), "--state-dir", str(state.path)]
    process = subprocess.Popen([*command, "--snapshot-seconds", str(snapshot_seconds)], cwd=PROJECT_DIR)  # noqa: S603
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if process.returncode == 2:
                raise IncompatibleState("The emulator refused the kept local state (see above).")
            raise RuntimeError(f"the emulator exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the emulator did not start listening")


def _stop_emulator(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM: it takes the last snapshot, then exits."""
    process.terminate()
    try:
        process.wait(timeout=STOP_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _stop_all(workers: list[Any]) -> None:
    """Signal every worker, then wait for each to finish what it holds (a message left
    unfinished stays on the queue and is redelivered after the restart)."""
    for worker in workers:
        worker.stop()
    for worker in workers:
        worker.join(timeout=STOP_WAIT_SECONDS)


def _close_when_answered(server: Any, handler: Any) -> None:
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while handler.in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    server.server_close()


# What Chalice local answers for a path with no route: API Gateway's 403, whose body
# depends on whether the request carried an Authorization header.
_NO_ROUTE_BODIES = (b'{"message": "Missing Authentication Token"}', b'{"message": "Authorization header requires')


def _contract_errors_handler() -> Any:
    """Chalice's local handler, answering an unknown path as our stack in AWS does, and
    counting the requests it is answering so a stop can wait for them.

    API Gateway says 403 for a path with no route; the AWS template maps that to
    `404 not_found` in the contract's error shape (infra/template.py).
    """
    from chalice.local import ChaliceRequestHandler, ForbiddenError, LocalGatewayException

    answering = [0]
    counting = threading.Lock()
    # Like Lambda's concurrency limit: past it requests wait their turn. Without it a burst of
    # 100 logins runs 100 bcrypt threads, and the emulator, one thread among them for the
    # CPU, answered DynamoDB calls after pynamodb's 5 s read timeout (500s).
    slots = threading.BoundedSemaphore(int(os.environ.get("API_CONCURRENCY", "8")))

    class ContractErrorsHandler(ChaliceRequestHandler):
        @staticmethod
        def in_flight() -> int:
            return answering[0]

        def _generic_handle(self) -> None:  # a request read, not an idle keep-alive connection
            with counting:
                answering[0] += 1
            try:
                with slots:
                    super()._generic_handle()
            finally:
                with counting:
                    answering[0] -= 1

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def _send_error_response(self, error: LocalGatewayException) -> None:
            if isinstance(error, ForbiddenError) and (error.body or b"").startswith(_NO_ROUTE_BODIES):
                body = json.dumps({"error": {"code": "not_found", "message": "No such resource."}}).encode()
                headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
                self._send_http_response(404, headers, body)
                return
            super()._send_error_response(error)

    return ContractErrorsHandler


def _interrupt(*_: Any) -> None:
    """SIGTERM (and SIGINT, even where a parent shell ignores it) stops the stack like Ctrl-C;
    a second one while stopping is ignored, so the last snapshot is always taken."""
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _still_stopping)
    raise KeyboardInterrupt


def _still_stopping(*_: Any) -> None:
    print("Stopping: finishing work in progress and saving state...", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedule-seconds", type=float, default=float(os.environ.get("SCHEDULE_SECONDS", "30")))
    parser.add_argument("--visibility-timeout", type=int, default=int(os.environ.get("QUEUE_VISIBILITY_TIMEOUT", "30")))
    parser.add_argument("--snapshot-seconds", type=float, default=float(os.environ.get("SNAPSHOT_SECONDS", "5")))
    parser.add_argument("--fresh", action="store_true", help="delete the kept local state first (make run FRESH=1)")
    args = parser.parse_args(argv)
    state = StateDir(Path(os.environ.get("LOCAL_STATE_DIR") or PROJECT_DIR / ".local"))
    if args.fresh:
        state.wipe()
    stack = Stack(
        schedule_seconds=args.schedule_seconds,
        visibility_timeout=args.visibility_timeout,
        state=state,
        snapshot_seconds=args.snapshot_seconds,
    )
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _interrupt)
    try:
        where = stack.start()
        for part, url in where.items():
            print(f"{part:<13} {url}", flush=True)
        print("Ready. Press Ctrl-C to stop.", flush=True)
        stack.serve_forever()
    except IncompatibleState as refused:
        print(refused, file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The API and dashboard (Chalice's local server), one process of several on one socket.

Lambda gives every concurrent request a container of its own; one Python process gives them
one interpreter lock. So the stack binds the API's port once and starts `API_PROCESSES`
copies of this module on it (`python -m local.api --fd N`), as a pre-fork server does: the
kernel hands each new connection to whichever process is free to accept it.

SIGTERM or SIGINT: stop accepting, let the requests being answered finish, exit.
Each request is one line on the console (`local.console`): method, path, status, milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local import console
from local.servers import BurstHTTPServer

PROJECT_DIR = Path(__file__).resolve().parent.parent
STOP_WAIT_SECONDS = 30  # for the requests being answered to finish


def listening_socket(host: str, port: int) -> socket.socket:
    """The API's socket, bound once by the stack and inherited by every API process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BurstHTTPServer.request_queue_size)
    sock.set_inheritable(True)
    return sock


def _server_on(sock: socket.socket) -> Any:
    """A server class for Chalice's LocalDevServer that serves `sock` instead of binding."""

    def build(address: tuple[str, int], handler: Any) -> BurstHTTPServer:
        # Every API process waits on this socket: non-blocking, so the ones that lose the race
        # for a connection go back to waiting instead of hanging in accept().
        sock.setblocking(False)
        server = BurstHTTPServer(address, handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.server_name, server.server_port = sock.getsockname()[:2]
        return server

    return build


def serve(sock: socket.socket) -> None:
    from chalice.cli.factory import CLIFactory
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    import app as application

    config = CLIFactory(str(PROJECT_DIR)).create_config_obj(chalice_stage_name="local")
    # What chalice.local.create_local_server does, with our request handler.
    CustomLocalChalice.__bases__ = (LocalChalice, application.app.__class__)
    application.app.__class__ = CustomLocalChalice  # type: ignore[assignment]  # (as Chalice itself does)
    handler = _contract_errors_handler()
    host, port = sock.getsockname()[:2]
    server = LocalDevServer(application.app, config, host, port, handler_cls=handler, server_cls=_server_on(sock))

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.server.serve_forever(poll_interval=0.2)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while handler.in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    server.server.server_close()


class FairSlots:
    """Like Lambda's concurrency limit: past it, requests wait their turn, first come first
    served. (A semaphore wakes waiters in no order: under a burst of 100 log-ins some waited
    25 s while later ones went first.) Without a limit 100 bcrypt threads share 2 cores and
    every request is slow."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiting: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            turn = None
            if self._free and not self._waiting:
                self._free -= 1
            else:
                turn = threading.Event()
                self._waiting.append(turn)
        if turn is not None:
            turn.wait()
        try:
            yield
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting.popleft().set()  # the slot passes straight to the longest waiter
                else:
                    self._free += 1


# What Chalice local answers for a path with no route: API Gateway's 403, whose body
# depends on whether the request carried an Authorization header.
_NO_ROUTE_BODIES = (b'{"message": "Missing Authentication Token"}', b'{"message": "Authorization header requires')
# http.server's own errors (a malformed request line, an over-long URI or header), by status.
_SERVER_ERROR_CODES = {400: "bad_request", 404: "not_found", 408: "request_timeout", 414: "uri_too_long"}


def _contract_errors_handler() -> Any:
    """Chalice's local handler, answering every error as our stack in AWS does (the contract's
    JSON error with the security headers), and counting the requests it is answering so a stop
    can wait for them.

    API Gateway says 403 for a path with no route; the AWS template maps that to
    `404 not_found` in the contract's error shape (infra/template.py). Every method, `TRACE`
    or `FOO` too, goes to Chalice's gateway (a known path answers `405 method_not_allowed`),
    never to http.server's HTML `501`.
    """
    from chalice.local import ChaliceRequestHandler, ForbiddenError, LocalGatewayException

    answering = [0]
    counting = threading.Lock()
    slots = FairSlots(int(os.environ.get("API_CONCURRENCY", "8")))

    class ContractErrorsHandler(ChaliceRequestHandler):
        @staticmethod
        def in_flight() -> int:
            return answering[0]

        status = 0  # the answer's, as send_response reports it

        def _generic_handle(self) -> None:  # a request read, not an idle keep-alive connection
            started = time.perf_counter()
            with counting:
                answering[0] += 1
            try:
                with slots.held():
                    super()._generic_handle()
            finally:
                with counting:
                    answering[0] -= 1
                elapsed_ms = (time.perf_counter() - started) * 1000
                print(f"{self.command} {urlsplit(self.path).path} {self.status} {elapsed_ms:.0f} ms")

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Instead of the access line on stderr: the status, for the console's line."""
            self.status = int(code) if str(code).isdigit() else 0

        # Chalice's class binds these to its own handler: ours (counted, fair, one console line) instead.
        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def __getattr__(self, name: str) -> Any:
            """`do_<METHOD>` for any other method http.server parsed: Chalice decides what it means."""
            if name.startswith("do_"):
                return self._generic_handle
            raise AttributeError(name)

        def _send_contract_error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
            self._send_http_response(status, headers, body)

        def _send_error_response(self, error: LocalGatewayException) -> None:
            if isinstance(error, ForbiddenError) and (error.body or b"").startswith(_NO_ROUTE_BODIES):
                self._send_contract_error(404, "not_found", "No such resource.")
                return
            self._send_contract_error(error.CODE, "bad_request" if error.CODE < 500 else "internal_error", "Refused.")

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's errors (before any route is looked up) in the contract's shape, not HTML."""
            self.close_connection = True
            self._send_contract_error(code, _SERVER_ERROR_CODES.get(code, "bad_request"), message or "Bad request.")

    return ContractErrorsHandler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fd", type=int, required=True, help="the listening socket, inherited from the stack")
    args = parser.parse_args(argv)
    console.route(Path(os.environ["LOCAL_STATE_DIR"]))
    serve(socket.socket(fileno=args.fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())

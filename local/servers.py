"""HTTP servers for the local stack that queue a burst of connections instead of resetting them.

`socketserver`'s listen backlog is 5 (werkzeug's 128): past it, the kernel resets new
connections, which is what 40 simultaneous users saw. Every local server (API, emulator,
sandbox) takes one request per thread and a backlog well above any burst we test (200).

Each also answers without Nagle's algorithm: a response written as headers, then body, in
two sends otherwise waits for the client's delayed ACK (40 ms) on every keep-alive request.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from chalice.local import ThreadedHTTPServer
from werkzeug.serving import ThreadedWSGIServer

LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn (4096 on current Linux)


class _NoDelay:
    """Mixin for a socketserver: TCP_NODELAY on every accepted connection."""

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()  # type: ignore[misc]
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class BurstHTTPServer(_NoDelay, ThreadedHTTPServer):
    """Chalice's local API server (threaded, daemon threads) with a deep backlog."""

    request_queue_size = LISTEN_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer (a timed-out probe) is no error of ours:
        without this, each prints a 25-line traceback on `make run`'s console."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class BurstWSGIServer(_NoDelay, ThreadedWSGIServer):
    """Werkzeug's threaded server (moto, the sandbox) with a deep backlog."""

    request_queue_size = LISTEN_BACKLOG

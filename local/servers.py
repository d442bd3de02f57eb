"""HTTP servers for the local stack that queue a burst of connections instead of resetting them.

`socketserver`'s listen backlog is 5 (werkzeug's 128): past it, the kernel resets new
connections, which is what 40 simultaneous users saw. Every local server (API, emulator,
sandbox) takes one request per thread and a backlog well above any burst we test (200).
"""

from __future__ import annotations

from chalice.local import ThreadedHTTPServer
from werkzeug.serving import ThreadedWSGIServer

LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn (4096 on current Linux)


class BurstHTTPServer(ThreadedHTTPServer):
    """Chalice's local API server (threaded, daemon threads) with a deep backlog."""

    request_queue_size = LISTEN_BACKLOG


class BurstWSGIServer(ThreadedWSGIServer):
    """Werkzeug's threaded server (moto, the sandbox) with a deep backlog."""

    request_queue_size = LISTEN_BACKLOG

"""`make run`'s console: a few human lines; the JSON logs and EMF documents in a file.

Every request used to print a JSON log line, an EMF document and an access line (208 lines in a
minute of use), burying the mail lines whose links a developer needs. Each process of the stack
(the stack with its workers, every API process) now sends what the app writes to stdout to
`LOCAL_STATE_DIR/stack.log`, and only its human lines to the console: one per request (method,
path, status, milliseconds), each email's To, Subject and links, the stack's own notices.
JSON lines (a log line or an EMF document, both start with `{`) go to the file only, unless
`VERBOSE=1` (`make run VERBOSE=1`) asks for all of it on the console too.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TextIO

LOG_NAME = "stack.log"


def log_path(state_dir: Path) -> Path:
    return state_dir / LOG_NAME


def verbose() -> bool:
    return os.environ.get("VERBOSE", "") not in ("", "0")


class _Split(io.TextIOBase):
    """A stdout that writes each whole line to the log file (one `write` to an O_APPEND file,
    so the processes' lines never interleave mid-line) and its human lines to the console.
    Lines are gathered per thread: a `print` is two writes, and threads print at once."""

    def __init__(self, log_file: Path, console: TextIO, show_json: bool) -> None:
        super().__init__()
        log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._console = console
        self._show_json = show_json
        self._pending = threading.local()
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        pending = getattr(self._pending, "text", "") + text
        *lines, self._pending.text = pending.split("\n")
        for line in lines:
            os.write(self._fd, (line + "\n").encode())
            if self._show_json or not line.startswith("{"):
                with self._lock:
                    self._console.write(line + "\n")
                    self._console.flush()
        return len(text)

    def flush(self) -> None:
        """Lines are written whole as they end; a line without its newline waits for it."""


def route(state_dir: Path) -> None:
    """From now on this process's stdout goes to the log file, its human lines (all of it
    with VERBOSE=1) also to the console. Call it before the app logs anything."""
    console = sys.stdout
    sys.stdout = _Split(log_path(state_dir), console, verbose())
    for handler in logging.getLogger("paidupload").handlers:  # the app's JSON logger, if already set up
        if isinstance(handler, logging.StreamHandler) and handler.stream is console:
            handler.setStream(sys.stdout)

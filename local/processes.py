"""Stopping the local stack's child processes, and reading why one died."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def stop(process: subprocess.Popen[bytes], *, grace_seconds: float) -> None:
    """SIGTERM, and SIGKILL once `grace_seconds` have passed (a hung shutdown must not hang the stack)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(log: Path) -> str:
    """The end of an engine's log, for the error that says it did not start."""
    return log.read_text(errors="replace").strip()[-2000:] if log.exists() else "(no log)"


def holding(argument: str) -> list[int]:
    """Running processes with `argument` as one of their command-line arguments (Linux's /proc)."""
    wanted = argument.encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().split(b"\0")
        except OSError:  # it ended while we looked
            continue
        if wanted in arguments:
            found.append(int(cmdline.parent.name))
    return found


def wait_until_gone(argument: str, *, timeout_seconds: float) -> list[int]:
    """Wait for every process holding `argument` to end; those still running after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while (left := holding(argument)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds a listening TCP socket on `port` (IPv4 or IPv6), from /proc:
    proof that an answer on the port is its own, not a process that took the port first."""
    sockets = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # it ended
        return False
    for descriptor in descriptors:
        try:
            sockets.add(descriptor.readlink().name)
        except OSError:  # closed while we looked (the listing's own, for one)
            continue
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
            if local_port == port and state == "0A" and f"socket:[{inode}]" in sockets:  # 0A: LISTEN
                return True
    return False

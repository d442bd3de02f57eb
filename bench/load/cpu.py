"""CPU seconds per part of a running stack, read from /proc (Linux): where a load run's time went."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
# The first match names the part; the order matters (every part is a Python process but one).
PARTS = (
    ("DynamoDBLocal.jar", "DynamoDB Local"),
    ("local.emulator", "moto (S3, SQS)"),
    ("localstack", "LocalStack"),
    ("local.api", "API processes"),
    ("local.stack", "workers, scheduler, sandbox"),
)


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, CPU seconds) of every process we may read."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (int(fields[1]), command, (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def by_part(root: int) -> dict[str, float]:
    """CPU seconds so far of `root` and every process below it, summed per part."""
    processes = _processes()
    below = {root}
    changed = True
    while changed:
        changed = False
        for pid, (parent, _, _) in processes.items():
            if parent in below and pid not in below:
                below.add(pid)
                changed = True
    totals: dict[str, float] = defaultdict(float)
    for pid in below & processes.keys():
        command = processes[pid][1]
        part = next((name for marker, name in PARTS if marker in command), "other")
        totals[part] += processes[pid][2]
    return dict(totals)


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {part: round(after[part] - before.get(part, 0.0), 1) for part in sorted(after)}

"""Measure the durable-state mechanisms with 1,000 users and 1,000 counted files.

Populates an in-process emulator with what 1,000 finished journeys leave (items and objects),
with moto's recorder on. Then compares:
- snapshot: `local.emulator.capture()` time and size, restore time in a fresh process, and
  `make run`'s start-up (to a healthy API) with that snapshot against an empty one;
- recorder: the recording's size and the time to replay it into a fresh emulator.
`python -m bench.load.state_size [--users 1000]`; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

WORK = Path(tempfile.mkdtemp(prefix="state-size-"))
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STAGE": "local",
        "BCRYPT_ROUNDS": "4",
        "JWT_SIGNING_KEY": "state-size-bench-key-0123456789abcdef",
        "PUBLIC_BASE_URL": "http://localhost:8000",
        "MOTO_ENABLE_RECORDING": "True",
        "MOTO_RECORDER_FILEPATH": str(WORK / "recording.jsonl"),
    }
)


def _populate(users: int) -> None:
    """Per user, what a finished journey leaves: the user, two claims, a payment, a counted file
    with its object and five activity entries (raw items of the real tables' sizes, ~300 B each;
    through the app it took ~2 s per user on this loaded machine)."""
    import boto3

    from local import bootstrap

    made = bootstrap.ensure_all()
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    prefix = "paidupload-local-"
    filler = {"S": "x" * 200}
    for index in range(users):
        user = f"{index:032x}"
        puts = [
            ("users", {"id": {"S": user}, "day": {"S": "2026-12-02"}, "created_at": {"S": "2026-12-02T00:00:00Z"}}),
            ("claims", {"key": {"S": f"username#user{index}"}}),
            ("claims", {"key": {"S": f"email#user{index}@example.com"}}),
            ("payments", {"transaction_id": {"S": f"p{user}"}, "user_id": {"S": user}}),
            ("files", {"id": {"S": f"f{user}"}, "user_id": {"S": user}}),
        ]
        puts += [("activity", {"user_id": {"S": user}, "sk": {"S": f"2026-12-02T00:00:0{n}Z#{n}"}}) for n in range(5)]
        batch: dict[str, list[dict[str, Any]]] = {}
        for table, item in puts:
            batch.setdefault(prefix + table, []).append({"PutRequest": {"Item": {**item, "pad": filler}}})
        dynamodb.batch_write_item(RequestItems=batch)  # 10 items: under the 25-item limit
        s3.put_object(Bucket=made["bucket"], Key=f"uploads/{user}/f{user}.txt", Body=b"words " * 60)


def _startup_seconds(state_dir: Path) -> float:
    from tests.stack import start_stack

    for attempt in range(3):  # free_port() can race with other processes on a busy machine
        started = time.perf_counter()
        try:
            stack = start_stack(WORK / f"start-{state_dir.name}-{attempt}.log", state_dir=state_dir, timeout=300)
        except RuntimeError as error:
            if "Address already in use" not in str(error):
                raise
            continue
        elapsed = time.perf_counter() - started
        break
    else:
        raise RuntimeError("no free ports after 3 attempts")
    stack.stop()
    return round(elapsed, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--skip-replay", action="store_true", help="replaying takes ~0.07 s per recorded request")
    args = parser.parse_args(argv)

    import logging

    from local.emulator import Emulator, capture

    logging.getLogger("paidupload").setLevel(logging.WARNING)
    from local.state import StateDir

    emulator = Emulator("127.0.0.1", 0).start()
    os.environ["AWS_ENDPOINT_URL"] = emulator.url
    requests.post(f"{emulator.url}/moto-api/recorder/start-recording", timeout=10)
    started = time.perf_counter()
    _populate(args.users)
    populated = time.perf_counter() - started
    requests.post(f"{emulator.url}/moto-api/recorder/stop-recording", timeout=10)

    result: dict[str, Any] = {"users": args.users, "files": args.users, "populate_s": round(populated, 1)}
    started = time.perf_counter()
    with emulator.gate.lock.exclusive():
        payload = capture()
    result["snapshot_capture_s"] = round(time.perf_counter() - started, 3)
    state = StateDir(WORK / "state")
    result["snapshot_bytes"] = state.write_snapshot(payload)
    restore_code = "import sys, time; from local.emulator import restore; t = time.perf_counter(); "
    restore_code += f"restore(open({str(state.snapshot_path)!r}, 'rb').read().split(b'\\n', 1)[1]); "
    restore_code += "print(time.perf_counter() - t)"
    restored = subprocess.run([sys.executable, "-c", restore_code], capture_output=True, text=True, check=True)
    result["snapshot_restore_s"] = round(float(restored.stdout), 3)
    print(json.dumps(result), flush=True)  # so far, in case a later stage fails
    result["make_run_startup_with_snapshot_s"] = _startup_seconds(state.path)
    result["make_run_startup_empty_s"] = _startup_seconds(WORK / "empty")

    recording = Path(os.environ["MOTO_RECORDER_FILEPATH"])
    result["recording_bytes"] = recording.stat().st_size
    result["recording_requests"] = sum(1 for _ in recording.open())
    emulator.stop()
    if not args.skip_replay:
        replay_target = Emulator("127.0.0.1", 0).start()
        started = time.perf_counter()
        requests.post(f"{replay_target.url}/moto-api/recorder/replay-recording", timeout=3600)
        result["recording_replay_s"] = round(time.perf_counter() - started, 1)
        replay_target.stop()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

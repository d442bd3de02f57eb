"""Worker invocations per 1,000 uploads, with the SQS handlers' batch size and window.

The local runner's `SqsPoller` plays the event source mapping with the settings the app
registers (`QUEUE_BATCH_SIZE`, `QUEUE_BATCH_WINDOW_SECONDS`), on moto's SQS; the handler counts
its invocations and answers a partial batch response. Arrivals: all at once (a backlog after an
outage, a load test), then steady streams at a few rates. The worker's own cost per message is
unchanged by batching (bench_wordcount.py); what changes is the number of Lambda invocations.

    .venv/bin/python -m bench.bench_batching [uploads]
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

os.environ.setdefault("STAGE", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from moto import mock_aws

from chalicelib.core import aws, batches
from chalicelib.core.config import settings
from local.runner import SqsPoller


def run(uploads: int, per_second: float | None) -> tuple[int, float]:
    """Invocations for `uploads` messages arriving at `per_second` (None: all queued first)."""
    sqs = aws.client("sqs")
    queue = sqs.create_queue(QueueName=f"bench-{time.monotonic_ns()}")["QueueUrl"]
    handled = threading.Semaphore(0)

    def handler(event: dict[str, Any], _: Any) -> Any:
        answer = batches.each_record(event["Records"], lambda records: None)
        for _record in event["Records"]:
            handled.release()
        return answer

    config = settings()
    poller = SqsPoller(
        queue,
        handler,
        name="bench",
        batch_size=config.queue_batch_size,
        window_seconds=config.queue_batch_window_seconds,
    )

    def produce() -> None:
        for start in range(0, uploads, 10):
            count = min(10, uploads - start)
            if per_second is None:
                entries = [{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(count)]
                sqs.send_message_batch(QueueUrl=queue, Entries=entries)
                continue
            for i in range(count):
                sqs.send_message(QueueUrl=queue, MessageBody=f"m{start + i}")
                time.sleep(1 / per_second)

    started = time.monotonic()
    if per_second is None:
        produce()
        poller.start()
    else:
        poller.start()
        produce()
    for _ in range(uploads):
        handled.acquire()
    poller.stop()
    return poller.invocations, time.monotonic() - started


def main(uploads: int) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]  # moto's mock is bypassed while an endpoint is configured
    config = settings()
    print(f"batch size {config.queue_batch_size}, window {config.queue_batch_window_seconds} s, {uploads} uploads")
    with mock_aws():
        for per_second in (None, 50.0, 10.0, 2.0):
            count = uploads if per_second is None or per_second >= 10 else min(uploads, int(per_second * 30))
            invocations, seconds = run(count, per_second)
            arrival = "all queued at once" if per_second is None else f"{per_second:g} per second"
            scaled = invocations * 1000 / count
            print(f"{arrival:>20}: {invocations} invocations for {count} ({scaled:.0f} per 1,000) in {seconds:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)

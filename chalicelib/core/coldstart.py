"""On Lambda, the garbage collector rests from the first import until the first invocation ends.

A cold start makes ~65,000 objects that live as long as the container: modules, classes,
botocore's service models. While they are being made the collector walks them again and again
and finds nothing, since none of them is garbage: that is ~8% of even a bare Chalice handler's
first answer (`bench/bench_coldstart.py`). So `app` pauses it before its first import; when
the first invocation is over, `gc.freeze()` moves everything alive then into the permanent
generation, which later collections skip, and collection resumes as usual.

Only where Lambda runs us (`AWS_LAMBDA_FUNCTION_NAME` is set): a test run or the local
server that imports `app` keeps its collector untouched.
"""

from __future__ import annotations

import gc
import os

_paused = False


def pause_collector() -> None:
    """Called by `app` before it imports anything else."""
    global _paused  # noqa: PLW0603 (state of the container, like the collector itself)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and gc.isenabled():
        gc.disable()
        _paused = True


def resume_collector() -> None:
    """Called after each invocation; only the first one after a pause does anything."""
    global _paused  # noqa: PLW0603 (state of the container, like the collector itself)
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()

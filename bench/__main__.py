"""Run every benchmark in turn, each as its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = [
    "bench_auth.py",
    "bench_wordcount.py",
    "bench_bombs.py",
    "bench_coldstart.py",
    "bench_observability.py",
    "bench_admin.py",
]

for name in BENCHES:
    print(f"== {name}", flush=True)
    subprocess.run([sys.executable, str(Path(__file__).with_name(name))], check=True)

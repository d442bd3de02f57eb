"""Word-count figures: ours against GNU `wc -w`, and against the original project's python-docx way.

Run: `.venv/bin/python bench/bench_wordcount.py [--mb 100] [--runs 3]`. Each contender runs as
its own process under `/usr/bin/time -v` (wall time and peak RSS from the kernel's accounting).
Generated inputs live in a temporary directory and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "payment",
    "upload",
    "আমার",
    "সোনার",
    "বাংলা",
    "ভাষা",
]

OURS = (
    "import sys; from chalicelib.files.wordcount import count_words; "
    "print(count_words(open(sys.argv[1], 'rb'), sys.argv[2]))"
)
# The original Django project's approach: python-docx paragraphs (misses tables), then split.
THEIRS_DOCX = (
    "import sys, docx; d = docx.Document(sys.argv[1]); print(len(' '.join(p.text for p in d.paragraphs).split()))"
)


def make_text(path: Path, megabytes: int) -> None:
    rng = random.Random(7)
    line = " ".join(rng.choice(WORDS) for _ in range(2000)) + "\n"
    block = line.encode() * 50
    with path.open("wb") as out:
        while out.tell() < megabytes * 1_000_000:
            out.write(block)


def make_docx(path: Path, paragraphs: int) -> None:
    import docx

    rng = random.Random(7)
    document = docx.Document()
    for i in range(paragraphs):
        document.add_paragraph(" ".join(rng.choice(WORDS) for _ in range(400)))
        if i % 20 == 0:
            table = document.add_table(rows=3, cols=3)
            for cell in table._cells:
                cell.text = " ".join(rng.choice(WORDS) for _ in range(5))
    document.save(str(path))


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS KiB, stdout) of one run under /usr/bin/time -v."""
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=True, cwd=PROJECT_DIR, env=env
    )
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    assert wall and rss, result.stderr
    hours, minutes, seconds = int(wall.group(1) or 0), int(wall.group(2)), float(wall.group(3))
    return hours * 3600 + minutes * 60 + seconds, int(rss.group(1)), result.stdout.strip()


def median_run(command: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    results = [timed(command, env) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results), results[0][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--docx-paragraphs", type=int, default=24_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as workdir:
        text = Path(workdir) / "big.txt"
        make_text(text, args.mb)
        size_mb = text.stat().st_size / 1_000_000
        ours = median_run([python, "-c", OURS, str(text), "txt"], args.runs)
        wc = median_run(["wc", "-w", str(text)], args.runs, env={**os.environ, "LC_ALL": "C.UTF-8"})
        print(f".txt {size_mb:.0f} MB (median of {args.runs}):")
        print(
            f"  ours     {size_mb / ours[0]:6.1f} MB/s  {ours[0]:.2f} s  peak {ours[1] / 1024:.0f} MiB  words {ours[2]}"
        )
        wc_words = wc[2].split()[0]
        print(f"  wc -w    {size_mb / wc[0]:6.1f} MB/s  {wc[0]:.2f} s  peak {wc[1] / 1024:.0f} MiB  words {wc_words}")
        print(f"  time ratio ours/wc {ours[0] / wc[0]:.2f}")

        document = Path(workdir) / "big.docx"
        make_docx(document, args.docx_paragraphs)
        size_mb = document.stat().st_size / 1_000_000
        ours = median_run([python, "-c", OURS, str(document), "docx"], args.runs)
        theirs = median_run([python, "-c", THEIRS_DOCX, str(document)], args.runs)
        print(f".docx {size_mb:.1f} MB (median of {args.runs}):")
        print(f"  ours         {ours[0]:.2f} s  peak {ours[1] / 1024:.0f} MiB  words {ours[2]}")
        print(f"  python-docx  {theirs[0]:.2f} s  peak {theirs[1] / 1024:.0f} MiB  words {theirs[2]} (misses tables)")
        print(f"  ratios ours/theirs: time {ours[0] / theirs[0]:.2f}, peak memory {ours[1] / theirs[1]:.2f}")


if __name__ == "__main__":
    main()

"""Hostile .docx files against the word counter: peak memory above idle and time, each alone.

Run: `.venv/bin/python bench/bench_bombs.py`. Every file is the worst of its kind that still
passes the upload limits (at most `MAX_UPLOAD_BYTES`, zip ratio under the counter's guard):
the issue's three bombs at their reported sizes and at the largest the limits let through,
plus others built against each remaining resource (comments, namespaces, zip directory),
and one large real-looking document as the yardstick. Each is counted in a fresh process
that reports its own peak RSS (`VmHWM`) after the imports and after counting.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from chalicelib.core.config import settings  # noqa: E402
from chalicelib.files.wordcount import MAX_COMPRESSION_RATIO  # noqa: E402
from tests import documents  # noqa: E402

MiB = 1 << 20
CHILD = """
import json, re, sys, time
from chalicelib.files.wordcount import Unreadable, count_words
def high_water_kib():  # this process's own peak: ru_maxrss would include the forking parent's
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1])
idle = high_water_kib()
wall, cpu = time.perf_counter(), time.process_time()
try:
    outcome = f"{count_words(open(sys.argv[1], 'rb'), 'docx'):,} words"
except Unreadable as refused:
    outcome = f"failed: {refused.reason}"
print(json.dumps({"outcome": outcome, "idle_kib": idle, "peak_kib": high_water_kib(),
                  "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))
"""


def _real_looking(total: int) -> Iterable[bytes]:
    """Paragraphs of random words in runs, as Word writes them (deflates about 3:1)."""
    rng = random.Random(7)
    words = [bytes(rng.choice(b"etaoinshrdlucmfw") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    yield f"<w:document {documents.W}><w:body>".encode()
    produced = 0
    while produced < total:
        run = b" ".join(rng.choices(words, k=60))
        paragraph = b'<w:p><w:r><w:rPr><w:lang w:val="en-GB"/></w:rPr><w:t xml:space="preserve">%s</w:t></w:r></w:p>'
        paragraph %= run
        produced += len(paragraph)
        yield paragraph
    yield b"</w:body></w:document>"


CASES: list[tuple[str, Callable[[], Iterable[bytes]] | Callable[[], bytes]]] = [
    ("real-looking document, 24 MiB of XML", lambda: _real_looking(24 * MiB)),
    ("issue: 12 MiB of nested open tags", lambda: documents.nested_tags(12 * MiB, every=20)),
    ("issue: 32 MiB of nested open tags", lambda: documents.nested_tags(32 * MiB, every=20)),
    ("nested open tags up to the 256 MiB cap", lambda: documents.nested_tags(250 * MiB, every=400)),
    ("issue: one 128 MiB attribute", lambda: documents.long_attribute(128 * MiB, every=240)),
    ("one 250 MiB attribute", lambda: documents.long_attribute(250 * MiB, every=240)),
    ("one 250 MiB comment", lambda: documents.long_comment(250 * MiB, every=120)),
    ("issue: 16 MiB of dense <w:p/>", lambda: documents.dense_paragraphs(16 * MiB, every=60)),
    ("dense <w:p/> up to the 256 MiB cap", lambda: documents.dense_paragraphs(250 * MiB, every=300)),
    ("250 levels each binding a 4,000-char namespace", lambda: documents.nested_namespaces(250, 4000)),
    ("zip directory of 65,000 entries (3 MB)", lambda: documents.many_entries(65_000)),
]


def build(path: Path, make: Callable[[], object]) -> None:
    made = make()
    if isinstance(made, bytes):
        path.write_bytes(made)
        return
    with path.open("wb") as target:
        documents.write_docx(target, made)  # type: ignore[arg-type]


def measure(path: Path) -> dict[str, object]:
    reply = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    return json.loads(reply.stdout)


def main() -> None:
    limit = settings().max_upload_bytes
    print("| file | zip | XML | ratio | outcome | peak RSS (above idle) | CPU | wall |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name, make in CASES:
            path = Path(scratch) / "bomb.docx"
            build(path, make)
            size = path.stat().st_size
            with zipfile.ZipFile(path) as archive:
                info = archive.getinfo(documents.DOCUMENT)
            ratio = info.file_size / max(info.compress_size, 1)
            assert size <= limit, (name, size)
            assert ratio <= MAX_COMPRESSION_RATIO or info.file_size <= MiB, (name, ratio)
            result = measure(path)
            peak, idle = int(result["peak_kib"]) / 1024, int(result["idle_kib"]) / 1024  # type: ignore[call-overload]
            print(
                f"| {name} | {size / 1e6:.2f} MB | {info.file_size / MiB:.0f} MiB | {ratio:.0f} | {result['outcome']} "
                f"| {peak:.0f} MiB (+{peak - idle:.1f}) | {result['cpu']:.2f} s | {result['wall']:.2f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""`local.console`: which of a process's lines reach `make run`'s console and which the log file."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from local import console

LINES = ['{"level": "INFO", "message": "request"}', "GET /api/me/ 200 4 ms", '{"_aws": {}}', "mail: To a | Subject b"]


@pytest.mark.parametrize("verbose", [False, True])
def test_json_lines_go_to_the_file_and_human_lines_to_both(tmp_path: Path, verbose: bool) -> None:
    shown = io.StringIO()
    split = console._Split(console.log_path(tmp_path), shown, show_json=verbose)
    for line in LINES:
        print(line, file=split)
    split.write("no newline yet")
    assert console.log_path(tmp_path).read_text().splitlines() == LINES
    assert shown.getvalue().splitlines() == (LINES if verbose else LINES[1::2])


def test_lines_printed_by_threads_at_once_stay_whole(tmp_path: Path) -> None:
    split = console._Split(console.log_path(tmp_path), io.StringIO(), show_json=False)

    def chatter(name: str) -> None:
        for n in range(200):
            print(f"{name} line {n}", file=split)  # a print is two writes: the text, then the newline

    threads = [threading.Thread(target=chatter, args=(f"thread{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = console.log_path(tmp_path).read_text().splitlines()
    assert sorted(written) == sorted(f"thread{i} line {n}" for i in range(4) for n in range(200))


def test_verbose_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [("", False), ("0", False), ("1", True)]:
        monkeypatch.setenv("VERBOSE", value)
        assert console.verbose() is expected

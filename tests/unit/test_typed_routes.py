"""mypy sees every call from a route into the domain: the modules app.py imports lazily are typed
as the real modules (`if TYPE_CHECKING`), and the lazy proxies stand for exactly those modules."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import app
from chalicelib.core.imports import Lazy

APP_SOURCE = Path(app.__file__).read_text(encoding="utf-8")


def _typed_modules() -> dict[str, str]:
    """name -> module of each import under app.py's `if TYPE_CHECKING:`."""
    block = next(
        node
        for node in ast.parse(APP_SOURCE).body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    found = {}
    for statement in block.body:
        if isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                found[alias.asname or alias.name] = f"{statement.module}.{alias.name}"
    return found


def _lazy_modules() -> dict[str, str]:
    return {
        name: repr(value)[len("<lazy module ") : -1] for name, value in vars(app).items() if isinstance(value, Lazy)
    }


def test_every_lazy_module_is_typed_as_the_module_it_imports() -> None:
    lazy = _lazy_modules()
    assert lazy, "app.py has no lazy modules: this test checks nothing"
    typed = _typed_modules()
    assert {name: typed.get(name) for name in lazy} == lazy


def test_a_wrong_call_into_the_domain_fails_mypy(tmp_path: Path) -> None:
    """app.py with wrong calls appended, one through each lazy module and a wrong signature,
    checked by mypy with the project's settings: each is reported."""
    names = sorted(_lazy_modules())
    calls = [f"    {name}.no_such_function_here()" for name in names]
    calls.append("    accounts.register(42, 43, 44, no_such_kw=1)")
    mutant = tmp_path / "app.py"
    mutant.write_text(APP_SOURCE + "\n\ndef _wrong_calls() -> None:\n" + "\n".join(calls) + "\n", encoding="utf-8")
    first = len(APP_SOURCE.splitlines()) + 4
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", str(mutant)],
        cwd=Path(app.__file__).parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    flagged = {int(line) for line in re.findall(rf"^{re.escape(str(mutant))}:(\d+): error", result.stdout, re.M)}
    assert flagged == set(range(first, first + len(calls))), result.stdout
    assert 'Unexpected keyword argument "no_such_kw" for "register"' in result.stdout

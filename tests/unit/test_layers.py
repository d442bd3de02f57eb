"""The packages of `chalicelib` import downward only: domain packages -> core, never back.

Every import counts, wherever it stands: at the top, inside a function (a lazy import is
still a dependency) or under `TYPE_CHECKING` (a type names its home). Read with `ast`, so
nothing is imported to find out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.stack import PROJECT_DIR

ROOT = "chalicelib"
# Which other packages each package may import. Listed: a new package must say where it stands.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "openapi": {"core"},  # core.declare: the vocabulary of the declarations
    "mail": {"core"},
    "accounts": {"core", "mail"},  # mail: reset links and notices
    "files": {"core", "accounts"},  # accounts: the caller's type (`Principal`)
    "payments": {"core", "accounts", "mail"},  # accounts: the caller's type (`Principal`); mail: receipts
    "dashboard": {"core"},
    "staff": {"core", "accounts", "files", "payments"},  # the features it oversees
    "leaving": {"core", "accounts", "files", "payments"},  # an account's export and end reach them all
}
# `__init__.py` stays a docstring: a package import must not pull in its modules (cold start).
# payments resolves its names on first use (PEP 562).
INIT_WITH_CODE = {"payments"}


def sources(root: Path = PROJECT_DIR / ROOT) -> dict[str, str]:
    """Module name -> source text, for every module below `root`."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path.read_text(encoding="utf-8")
    return modules


def _imported(module: str, tree: ast.Module, known: set[str], is_package: bool) -> Iterator[tuple[str, int]]:
    """(module imported, line) for every import of a `chalicelib` module in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == ROOT)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upward
                here = module.split(".") if is_package else module.split(".")[:-1]
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != ROOT:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in known else base), node.lineno


def package_of(module: str) -> str | None:
    """`chalicelib.core.web` -> `core`; the root package itself belongs to none."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_imports(modules: Mapping[str, str]) -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> where (`module:line`), between packages only."""
    known = set(modules)
    edges: dict[tuple[str, str], list[str]] = {}
    for module, text in modules.items():
        source = package_of(module)
        is_package = any(other.startswith(f"{module}.") for other in known)
        for target, line in _imported(module, ast.parse(text), known, is_package):
            imported = package_of(target)
            place = f"{module}:{line}"
            if source and imported and imported != source and place not in edges.get((source, imported), []):
                edges.setdefault((source, imported), []).append(place)
    return edges


def violations(modules: Mapping[str, str], allowed: Mapping[str, set[str]] = ALLOWED) -> list[str]:
    """Every import the layering forbids, and every cycle between packages."""
    edges = package_imports(modules)
    packages = {p for module in modules if (p := package_of(module))}
    found = [f"package {p!r} has no place in ALLOWED" for p in sorted(packages - set(allowed))]
    for (source, target), places in sorted(edges.items()):
        if source in allowed and target not in allowed[source]:
            found.append(f"{source} -> {target} is not allowed ({', '.join(places)})")
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    found += [f"cycle: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    return found


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle through each node that closes one (depth first)."""
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return cycles


def test_imports_point_downward_and_packages_form_no_cycle() -> None:
    assert violations(sources()) == []


def test_the_layers_themselves_form_no_cycle() -> None:
    assert _cycles(ALLOWED) == []
    assert ALLOWED["core"] == set()


def test_core_imports_no_domain_package() -> None:
    edges = package_imports(sources())
    assert {target for source, target in edges if source == "core"} == set()


@pytest.mark.parametrize(
    ("importer", "line", "expected"),
    [
        ("chalicelib.core.web", "from chalicelib.accounts import tokens", "core -> accounts is not allowed"),
        ("chalicelib.core.web", "from chalicelib import payments", "core -> payments is not allowed"),
        ("chalicelib.core.web", "import chalicelib.staff.admin", "core -> staff is not allowed"),
        ("chalicelib.core.web", "from ..files import uploads", "core -> files is not allowed"),
        ("chalicelib.accounts.tokens", "from chalicelib.staff import admin", "accounts -> staff is not allowed"),
        ("chalicelib.files.uploads", "from chalicelib.payments import reads", "files -> payments is not allowed"),
    ],
)
def test_an_upward_or_sideways_import_is_found(importer: str, line: str, expected: str) -> None:
    modules = dict(sources())
    modules[importer] += f"\n\ndef later() -> None:\n    {line}\n"  # lazy imports count too
    found = violations(modules)
    assert any(message.startswith(expected) and importer in message for message in found), found


def test_a_cycle_between_packages_is_found() -> None:
    modules = dict(sources())
    modules["chalicelib.accounts.tokens"] += "\nfrom chalicelib.files import uploads\n"
    permissive = {**ALLOWED, "accounts": {"core", "files"}}
    assert "cycle: accounts -> files -> accounts" in violations(modules, permissive)


def test_a_new_package_must_take_its_place() -> None:
    modules = {**sources(), "chalicelib.reports.monthly": "from chalicelib.core import clock\n"}
    assert "package 'reports' has no place in ALLOWED" in violations(modules)


def test_package_inits_import_nothing() -> None:
    for module, text in sources().items():
        if package_of(module) in INIT_WITH_CODE or not (PROJECT_DIR / module.replace(".", "/")).is_dir():
            continue
        body = ast.parse(text).body
        assert len(body) == 1, f"{module}: its __init__ holds only its docstring"
        assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), module

"""The package's layout keeps the rules of docs/architecture.md: no import cycle, small modules, the core
independent of the benchmark and the CLI, no reads of another object's private fields."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 800


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for catsplit/ and export/ (imported as catsplit.export)."""
    out = {}
    for folder, prefix in (("catsplit", ["catsplit"]), ("export", ["catsplit", "export"])):
        for p in (ROOT / folder).rglob("*.py"):
            parts = prefix + list(p.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every catsplit module `name` imports, anywhere in the file (function-level and TYPE_CHECKING imports too),
    and the packages whose `__init__` each import runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t in MODULES and t != name:  # what the statement names, even the module's own package
                found.add(t)
            parts = t.split(".")
            for i in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__ first
                prefix = ".".join(parts[:i])
                if prefix in MODULES and prefix != name and not name.startswith(prefix + "."):
                    found.add(prefix)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


# Clients of the public API, which may import it from the top-level package: the command line, the demo and
# the benchmark's scripts. Library modules import from catsplit.<module>.
CLIENTS = ("catsplit.cli", "catsplit.demo", "catsplit.bench.tools", "catsplit.__main__")


def test_no_import_cycle():
    # The top-level package re-exports lazily; its TYPE_CHECKING block names every module, so it is left out.
    assert [c for c in _cycles() if "catsplit" not in c] == []
    library = [n for n in MODULES if n != "catsplit" and not n.startswith(CLIENTS)]
    assert [n for n in library if "catsplit" in GRAPH[n]] == [], "library modules import from catsplit.<module>"


def test_the_command_line_builds_its_parser_without_torch():
    """`catsplit --help` and `catsplit predict` must not pay for importing torch (seconds on a small machine)."""
    import subprocess
    import sys

    code = "import sys, catsplit.cli; catsplit.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_module_is_over_800_lines():
    long = {name: n for name, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_core_never_imports_the_benchmark_or_the_command_line():
    core = [n for n in MODULES if not n.startswith(("catsplit.bench", "catsplit.cli")) and n not in ("catsplit", "catsplit.__main__")]
    bad = {n: sorted(d for d in GRAPH[n] if d.startswith(("catsplit.bench", "catsplit.cli"))) for n in core}
    assert {n: d for n, d in bad.items() if d} == {}


def _private_reads(path: Path) -> list[str]:
    """`x._field` where x is not self/cls and not a module: reading another object's private state."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_names = {a.asname or a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    module_names |= {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and (owner.id in ("self", "cls") or owner.id in module_names):
                continue
            out.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    return out


def test_no_module_reads_another_objects_private_fields():
    found = [hit for p in MODULES.values() for hit in _private_reads(p)]
    assert found == []


@pytest.mark.parametrize("path", sorted((ROOT / "tests").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_tests_use_public_names_only(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    private = [
        f"{node.lineno}: {a.name}"
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("catsplit")
        for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
    ]
    assert private == []

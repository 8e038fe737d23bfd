"""The package's shape (issue 29): imports point one way (no cycles between modules) and no
module imports another module's `_private` name. The test walks the AST of every module
under colorplug/, lazy imports inside functions included."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "colorplug"

#: Cycles still to be untangled, each named exactly; a new cycle, or one of these growing,
#: fails. The weights family (spec / cache / registry) is issue 29's "one module family".
KNOWN_CYCLES: list[set[str]] = [
    {"colorplug.cache", "colorplug.registry", "colorplug.weights"},
]


def _modules(root: Path) -> dict[str, Path]:
    mods = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _imports(mods: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    """Module -> modules of colorplug it imports; and every private cross-import found."""
    edges: dict[str, set[str]] = defaultdict(set)
    private: list[str] = []
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("colorplug"):
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    dest = full if full in mods else target
                    if dest in mods and dest != name:
                        edges[name].add(dest)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{name} imports {alias.name} from {target}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in mods and alias.name != name:
                        edges[name].add(alias.name)
    return edges, private


def _cycles(edges: dict[str, set[str]], nodes: list[str]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in nodes:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_another_modules_private_names():
    _, private = _imports(_modules(ROOT))
    assert private == []


def test_no_import_cycles_beyond_the_known_ones():
    mods = _modules(ROOT)
    edges, _ = _imports(mods)
    cycles = _cycles(edges, sorted(mods))
    unexpected = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert unexpected == []


def test_the_checks_find_a_cycle_and_a_private_import(tmp_path):
    """The walker itself: a planted cycle through a private name is found."""
    pkg = tmp_path / "colorplug"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub.b import _helper\n")
    (pkg / "sub" / "b.py").write_text("def _helper():\n    from ..a import x\n")
    mods = _modules(pkg)
    edges, private = _imports(mods)
    assert private == ["colorplug.a imports _helper from colorplug.sub.b"]
    assert _cycles(edges, sorted(mods)) == [{"colorplug.a", "colorplug.sub.b"}]

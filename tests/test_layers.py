"""The import structure the architecture promises (docs/architecture.md, "Inside signin").

Read from the source with ``ast``, every import counted, function-level ones included: a
cycle hidden inside a function is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "portal"

# Inside signin, lowest layer first; a module may import its own layer or lower ones.
SIGNIN_LAYERS = {
    "tokens": 0, "errors": 0, "signals": 0,
    "models": 1,
    "sessions": 2, "devices": 2, "middleware": 2, "oidc": 2,
    "flows": 3,
    "forms": 4, "views": 4, "context_processors": 4,
    "admin": 5, "apps": 5, "urls": 5, "receivers": 5, "migrations": 5,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _signin_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["portal", "signin"] or len(parts) < 3:
        return None
    return SIGNIN_LAYERS[parts[2]]


def test_no_signin_module_imports_a_layer_above_it() -> None:
    upward = []
    for module, targets in _imports().items():
        own = _signin_layer(module)
        if own is None:
            continue
        upward += [f"{module} -> {t}" for t in targets
                   if (layer := _signin_layer(t)) is not None and layer > own]
    assert upward == []


def test_every_signin_module_has_a_layer() -> None:
    names = {p.relative_to(PACKAGE / "signin").parts[0].removesuffix(".py")
             for p in (PACKAGE / "signin").iterdir() if not p.name.startswith("__")}
    assert names <= set(SIGNIN_LAYERS), names - set(SIGNIN_LAYERS)


def test_no_import_cycles_anywhere_in_src() -> None:
    graph = _imports()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []

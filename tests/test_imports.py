"""The package's import graph: no cycles, and the ground floor never imports upward.

Layers: `errors`, `config` (0) < `losses`, `models`, `data` (1) < everything else (2). A module may import
from its own layer or below. Every `import` counts, also those inside functions: a lazy import
hides a cycle from Python, not from the reader.

No cycles between modules, and none between the top-level parts of rtrain either (`rtrain.train.loop`
counts as `train`, `rtrain.export` as `export`): e.g. `train` and `eval` both read checkpoints through
`rtrain.checkpoint`, which imports neither, instead of `eval` reaching into `train` through `export`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rtrain"
LAYERS = {"errors": 0, "config": 0, "losses": 1, "models": 1, "data": 1}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The rtrain modules `name` imports (a package counts as its __init__; `from pkg import mod` as mod)."""
    out: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "rtrain")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "rtrain":
                continue
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return out & known


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported(name, path, set(mods)) - {name} for name, path in mods.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 2) if len(parts) > 1 else 2


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def part(module: str) -> str | None:
    """A module's top-level part of rtrain (`rtrain.train.loop` -> `train`); None for `rtrain` itself and
    `rtrain.cli`, the entry point that imports every part."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "cli" else None


def collapse(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph collapsed to rtrain's top-level parts (imports within a part dropped)."""
    out: dict[str, set[str]] = {}
    for module, targets in edges.items():
        source = part(module)
        if source is None:
            continue
        out.setdefault(source, set())
        for target in targets:
            if (dest := part(target)) is not None and dest != source:
                out[source].add(dest)
                out.setdefault(dest, set())
    return out


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_no_import_cycles_between_top_level_parts() -> None:
    assert cycles(collapse(graph())) == []


def test_collapse_to_parts() -> None:
    edges = {
        "rtrain": {"rtrain.cli", "rtrain.a.x"},
        "rtrain.cli": {"rtrain.a.x", "rtrain.b"},
        "rtrain.a.x": {"rtrain.a.y", "rtrain.b"},
        "rtrain.a.y": set(),
        "rtrain.b": {"rtrain.c.z"},
        "rtrain.c.z": {"rtrain.a.y"},
    }
    assert collapse(edges) == {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert cycles(collapse(edges)) == [["a", "b", "c"]]


def test_lower_layers_never_import_upward() -> None:
    uphill = sorted(f"{m} -> {t}" for m, targets in graph().items() for t in targets if layer(t) > layer(m))
    assert uphill == []


@pytest.mark.parametrize(
    "edges, expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [["a", "b", "c"]]),
    ],
)
def test_cycle_finder(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(edges) == expected


def test_graph_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "rtrain" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "rtrain" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from rtrain.sub import b\n    from . import c\n")
    known = {"rtrain", "rtrain.sub", "rtrain.sub.a", "rtrain.sub.b", "rtrain.sub.c"}
    assert imported("rtrain.sub.a", pkg / "a.py", known) == {"rtrain.sub.b", "rtrain.sub.c"}

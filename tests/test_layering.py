"""The package's floors, read from its source: nothing imports upward, no circle, and no tool imports a sibling.

Floors, from the ground up (a module may import its own floor and those below; a new top-level module or
subpackage must be given a floor here):

0. ``errors``, ``generated``, ``meta``, ``counting``, ``raycluster``, ``output``, ``spread``, ``rules``,
   ``progress`` — no blockstitch imports but each other
1. ``blockspec``, ``registry``, ``foreign``, ``catalogue`` — what a block is, the registry, its catalogue
2. ``blocks`` — the built-in families (reached by the registry through its generated index, by data)
3. ``assemble``, ``transfer`` — spec → plan → module
4. ``sources``, ``sources_ultralytics`` — the one resolver (and its ``ultralytics:`` names)
5. ``stitch``
6. ``networks``, ``subject`` — source → Subject → network/plan/module, and the Subject every tool takes
7. ``profile`` — what a network costs (params, MACs, memory): bench's roofline and check's count stand on it
8. ``bench``, ``check``, ``graph``, ``export``, ``fuse``, ``catalogue_docs``, ``train`` — the tools; none imports
   another
9. ``ablate``, ``yolo`` — what composes tools: the ablation workflow (stitch, bench, train) and the Ultralytics
   bridge (its detect task is a train task)
10. ``api`` — the facade
11. ``render``, ``regenerate``, ``cli`` (one module per subcommand), ``__main__`` and the package itself (its
    names arrive lazily, PEP 562)

Imports under ``if TYPE_CHECKING:`` (they never run) are not counted. Imports inside a function (lazy ones) and
under ``if __name__ == "__main__":`` count like top-level ones, for the floors, the circles and the tools alike:
a lazy import only delays a dependency.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "blockstitch"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "generated", "meta", "counting", "raycluster", "output", "spread", "rules", "progress"),
    ("blockspec", "registry", "foreign", "catalogue", "required"),
    ("blocks",),
    ("assemble", "transfer"),
    ("sources", "sources_ultralytics"),
    ("stitch",),
    ("networks", "subject"),
    ("profile",),
    ("bench", "check", "graph", "export", "fuse", "catalogue_docs", "train"),
    ("ablate", "yolo"),
    ("api",),
    ("render", "regenerate", "cli", "__main__", ""),
]
FLOOR = {unit: i for i, units in enumerate(LAYERS) for unit in units}
TOOLS = frozenset(LAYERS[FLOOR["bench"]])
"""The tools: each stands on the floors below and borrows nothing from a sibling."""

KNOWN_UPWARD: dict[tuple[str, str], str] = {}
"""Upward imports still in the tree, each with its owner and the way out. An entry whose import is gone fails
the test too, so this list only shrinks."""

KNOWN_CIRCLES: dict[tuple[str, str], str] = {}
"""Imports (importer, imported) that still close a circle inside one unit, each with its owner and the way out;
the circle test leaves them out. An entry whose import is gone fails the test too, so this list only shrinks."""


def _modules() -> dict[str, Path]:
    found = {}
    for file in sorted(PACKAGE.rglob("*.py")):
        parts = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = file
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _target(module: str, node: ast.ImportFrom | ast.Import, name: str | None) -> list[str]:
    """The blockstitch modules an import statement names (``from .. import networks`` names the submodule)."""
    if isinstance(node, ast.Import):
        return [name] if name and name.split(".")[0] == "blockstitch" else []
    if node.level:
        base = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "blockstitch":
        return []
    sub = f"{target}.{name}"
    return [sub] if sub in MODULES else [target]


@functools.cache
def imports(module: str) -> tuple[set[str], set[str]]:
    """(top-level, local) blockstitch imports of a module, TYPE_CHECKING blocks left out."""
    top: set[str] = set()
    local: set[str] = set()

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit(stmt, lazy)
                continue
            child_lazy = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for alias in child.names:
                    for target in _target(module, child, alias.name):
                        (local if lazy else top).add(target)
            visit(child, child_lazy)

    visit(ast.parse(MODULES[module].read_text(encoding="utf-8")), False)
    return top, local


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _floor(module: str) -> int:
    return FLOOR[_unit(module)]


def test_every_module_has_a_floor() -> None:
    missing = sorted({_unit(m) for m in MODULES if _unit(m) not in FLOOR})
    assert not missing, f"give these a floor in tests/test_layering.py LAYERS: {missing}"


def test_nothing_imports_upward() -> None:
    upward, seen = [], set()
    for module in MODULES:
        top, local = imports(module)
        for target in sorted(top | local):
            if target in MODULES and _floor(target) > _floor(module):
                key = (".".join(module.split(".")[:2]), ".".join(target.split(".")[:2]))
                seen.add(key)
                if key not in KNOWN_UPWARD:
                    how = "top-level" if target in top else "inside a function"
                    upward.append(f"{module} (floor {_floor(module)}) imports {target} (floor {_floor(target)}), "
                                  f"{how}")
    assert not upward, "upward imports:\n" + "\n".join(upward)
    gone = sorted(set(KNOWN_UPWARD) - seen)
    assert not gone, f"these upward imports are gone: remove them from KNOWN_UPWARD: {gone}"


def _parents(target: str, importer: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first, unless the importer is inside them."""
    parts = target.split(".")
    return [p for p in (".".join(parts[:i]) for i in range(2, len(parts)))
            if p in MODULES and not importer.startswith(f"{p}.") and importer != p]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := dfs(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := dfs(start)) is not None:
            return found
    return None


def _all_imports(module: str) -> set[str]:
    top, local = imports(module)
    return top | local


def test_no_circle_among_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target in _all_imports(module):
            if target in MODULES and target != module:
                graph[module].add(target)
                graph[module].update(_parents(target, module))
    gone = sorted(edge for edge in KNOWN_CIRCLES if edge[1] not in graph.get(edge[0], set()))
    assert not gone, f"these imports are gone: remove them from KNOWN_CIRCLES: {gone}"
    for importer, imported in KNOWN_CIRCLES:
        graph[importer].discard(imported)
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " → ".join(cycle or [])


def test_no_circle_between_units() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target in _all_imports(module):
            if target in MODULES and _unit(target) != _unit(module):
                graph[_unit(module)].add(_unit(target))
    cycle = _cycle(graph)
    assert cycle is None, "circle between parts of the package: " + " → ".join(cycle or [])


def test_no_tool_imports_a_sibling_tool() -> None:
    borrowed = sorted(f"{module} imports {target}" for module in MODULES if _unit(module) in TOOLS
                      for target in _all_imports(module)
                      if target in MODULES and _unit(target) in TOOLS and _unit(target) != _unit(module))
    assert not borrowed, ("a tool borrows from a sibling tool (move the shared piece down a floor):\n"
                          + "\n".join(borrowed))


def test_the_walker_sees_what_it_must() -> None:
    """The reader itself: a lazy import is local, a TYPE_CHECKING one is not counted, `from .. import x` names x."""
    top, local = imports("blockstitch.cli.check_module")
    assert "blockstitch.errors" in top and "blockstitch.networks" not in top
    assert "blockstitch.render" in local and "blockstitch.assemble" not in top
    named = ast.parse("from .. import networks as api").body[0]
    assert _target("blockstitch.bench", named, "networks") == ["blockstitch.networks"]  # the submodule itself
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None

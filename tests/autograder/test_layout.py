"""The engine's layout: no import cycles, a core that depends on nothing else, light result types.

The import graph is read from the source with ``ast``: every import counts, at module
level, inside functions and under ``TYPE_CHECKING``, absolute or relative.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import autograder

ENGINE = Path(autograder.__file__).resolve().parent
#: The groups of the engine besides the core; the core imports none of them.
GROUPS = ("grading", "term", "authoring", "checks", "cli", "plugins")


def module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ENGINE.rglob("*.py"))}


def imported(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The engine modules that the module ``name`` (file ``path``) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                anchor = package.split(".")[: package.count(".") + 2 - node.level]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import module` imports the module, `from module import name` the module
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a name inside a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = engine_modules()
    return {name: imported(path, name, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected part of ``graph`` that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    parts: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                parts.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [cycle_in(graph, set(part)) for part in parts]


def cycle_in(graph: dict[str, set[str]], part: set[str]) -> list[str]:
    """A path that goes round inside ``part`` (a strongly connected set), first node repeated."""
    start = min(part)
    path, seen = [start], {start}
    while True:
        step = min(t for t in graph[path[-1]] if t in part)
        if step in seen:
            return [*path[path.index(step) :], step]
        path.append(step)
        seen.add(step)


def test_cycles_are_found_with_their_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_inside_functions_and_relative_imports_count(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from . import sibling\n"
        "def f():\n    from ..core.spec import Spec\n"
        "if False:\n    import autograder.core.results\n"
    )
    modules = {n: Path() for n in ("autograder.grading.sibling", "autograder.core.spec")}
    modules["autograder.core.results"] = Path()
    found = imported(module, "autograder.grading.m", modules)
    assert found == {
        "autograder.grading.sibling",
        "autograder.core.spec",
        "autograder.core.results",
    }


def test_the_engine_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in found)


def test_the_core_imports_nothing_of_the_other_groups():
    outside = {f"autograder.{group}" for group in GROUPS}
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        if name.startswith("autograder.core")
        for target in targets
        if any(target == group or target.startswith(f"{group}.") for group in outside)
    )
    assert (ENGINE / "core").is_dir()
    assert not wrong


def test_every_module_lies_in_a_group():
    top = {name.split(".")[1] for name in engine_modules() if name.count(".") >= 1}
    assert top - {"__main__"} <= {"core", *GROUPS}


def test_result_types_import_no_test_runner_nbgrader_or_tensorflow():
    probe = (
        "import sys, autograder.core.results;"
        "print(','.join(sorted({'pytest', 'nbgrader', 'tensorflow', 'keras'} & set(sys.modules))))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == ""

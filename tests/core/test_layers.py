"""Layers point one way: core (with audit beside it) <- agents <- workflows <- runs <- webhooks
(schedules beside it) <- dashboard <- demo <- config.

Every module's imports are parsed (those inside functions too: a deferred import is still a dependency),
and a module may import only from its own layer or lower ones. Within the code, module-level imports
form no circle (a circle is what deferred imports are usually written to hide)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Lower number = lower layer. core and audit share the platform layer: core's services record audit events.
LAYERS = {
    "core": 0,
    "audit": 0,
    "agents": 1,
    "workflows": 2,
    "runs": 3,
    "webhooks": 4,
    "schedules": 4,
    "dashboard": 5,
    "demo": 6,
    "config": 7,
}


def modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        folder = ROOT / package
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def imports(name: str, path: Path, *, top_level_only: bool = False) -> set[str]:
    """The project modules (or packages) `name` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in MODULES else base)
    return {target for target in targets if target.split(".")[0] in LAYERS}


def test_every_app_is_placed_in_a_layer():
    apps = {path.parent.name for path in ROOT.glob("*/apps.py")}
    assert apps <= set(LAYERS), f"put {sorted(apps - set(LAYERS))} in LAYERS"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down(name):
    layer = LAYERS[name.split(".")[0]]
    upward = sorted(t for t in imports(name, MODULES[name]) if LAYERS[t.split(".")[0]] > layer)
    assert not upward, f"{name} (layer {layer}) imports from a higher layer: {upward}"


HTTP_FREE = ("services", "choices", "messages", "decider", "executor", "bridge", "tasks", "policy", "errors")


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if n.rpartition(".")[2] in HTTP_FREE or ".management.commands." in n)
)
def test_services_and_workers_know_nothing_of_http(name):
    """They raise core/errors.py exceptions; the API maps them to status codes, the admin and the
    commands show their message."""
    tree = ast.parse(MODULES[name].read_text())
    used = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    used |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    drf = sorted(module for module in used if module.split(".")[0] == "rest_framework" or ".api" in module)
    assert not drf, f"{name} imports {drf}"


def test_no_import_cycles():
    graph = {name: imports(name, path) & set(MODULES) for name, path in MODULES.items()}
    # Importing a submodule imports its package first: that is not a circle of ours.
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    cycles = strongly_connected(graph)
    assert not cycles, f"import circles: {cycles}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def later():\n    from runs.models import Run\n")
    assert imports("agents.bad", bad) == {"runs.models"}
    assert strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]

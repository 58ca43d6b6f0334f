"""The shape of the house: no import circles between agentflow's modules, local imports included.

An import inside a function still makes its module depend on the one it imports; only imports
under `if TYPE_CHECKING:` (never executed) are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "agentflow"


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imports_graph() -> nx.DiGraph:
    modules = {module_name(p)[0]: p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text())
        type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(block.test) for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph.add_edges_from((name, t) for t in targets if t in modules and t != name)
    return graph


def test_the_graph_is_read_from_the_real_modules() -> None:
    graph = imports_graph()
    assert ("agentflow.agent.loop", "agentflow.core.tool") in graph.edges
    assert ("agentflow.durable.runtime", "agentflow.durable.workers") in graph.edges  # a local import counts


def test_no_module_imports_itself_around_a_circle() -> None:
    circles = [sorted(c) for c in nx.strongly_connected_components(imports_graph()) if len(c) > 1]
    assert circles == []


def test_the_floor_knows_nothing_above_it() -> None:
    """`core` and `models` are the floor: they import no agent, team, workflow, durable or CLI module."""
    above = ("agentflow.agent", "agentflow.teams", "agentflow.workflow", "agentflow.durable", "agentflow.cli",
             "agentflow.server", "agentflow.runtime")
    graph = imports_graph()
    for low in ("agentflow.core", "agentflow.models"):
        wrong = [(a, b) for a, b in graph.edges if a.startswith(low + ".") and b.startswith(above)]
        assert wrong == [], f"{low} imports above itself: {wrong}"

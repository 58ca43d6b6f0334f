"""Dependency graphs (networkx): built from `{node: its dependencies}`, refused with a clear
error when a dependency is unknown or the dependencies form a cycle.

networkx is imported on first use: it costs ~20 MB and ~70 ms, which an agent that never
plans should not pay."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import networkx as nx


class CycleError(ConfigError):
    """The dependencies loop back on themselves; `cycle` lists the nodes in order."""

    def __init__(self, message: str, cycle: list[str]) -> None:
        super().__init__(message)
        self.cycle = cycle


def dependency_graph(depends_on: Mapping[str, Iterable[str]], *, what: str = "step") -> nx.DiGraph[str]:
    """Edges run from a dependency to its dependent, so a topological order is an order to run in."""
    graph = new_graph()
    graph.add_nodes_from(depends_on)
    for node, needs in depends_on.items():
        for need in needs:
            if need not in depends_on:
                known = ", ".join(depends_on) or "none"
                raise ConfigError(f"{what} {node!r} depends on {need!r}, which does not exist (known: {known})")
            graph.add_edge(need, node)
    check_acyclic(graph, what=what)
    return graph


def new_graph() -> nx.DiGraph[str]:
    import networkx

    return networkx.DiGraph()


def check_acyclic(graph: nx.DiGraph[str], *, what: str = "step") -> None:
    import networkx as nx

    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    cycle = [str(a) for a, _ in edges]
    path = " -> ".join([*cycle, cycle[0]])
    raise CycleError(f"the {what}s' dependencies form a cycle (each is needed by the next): {path}. "
                     "Fix: remove one of these dependencies", cycle)

"""Drawing a compiled workflow: Mermaid and Graphviz dot text (no renderer needed).

Routes, loops, fan-outs and sub-workflows are drawn as boxes around their insides: a route
with a diamond and labelled branches, a loop with a dashed edge back to its start, a fan-out
labelled with what it maps over."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from .control import Each, Loop, Switch
from .graph import Graph, Placed


@dataclass
class _Drawing:
    """Format-neutral: nodes, edges (with label and style) and nested boxes."""

    nodes: list[tuple[str, str, str]] = field(default_factory=list[tuple[str, str, str]])  # id, label, shape
    edges: list[tuple[str, str, str, bool]] = field(default_factory=list[tuple[str, str, str, bool]])
    boxes: list[tuple[str, str, _Drawing]] = field(default_factory=list[tuple[str, str, "_Drawing"]])


class _Drawer:
    def __init__(self) -> None:
        self.ids = (f"n{i}" for i in itertools.count())

    def graph(self, graph: Graph, into: _Drawing) -> tuple[list[str], list[str]]:
        """Draws `graph` into `into`; the ids where it is entered and left."""
        ends = {name: self.unit(p, into) for name, p in graph.nodes.items()}
        for a, b in graph.dag.edges:
            for x in ends[a][1]:
                for y in ends[b][0]:
                    into.edges.append((x, y, "", False))
        sources = [n for n in graph.nodes if graph.dag.in_degree(n) == 0]
        return ([i for n in sources for i in ends[n][0]], [i for n in graph.sinks for i in ends[n][1]])

    def unit(self, placed: Placed, into: _Drawing) -> tuple[list[str], list[str]]:
        unit, name = placed.unit, placed.name
        if isinstance(unit, Switch):
            box = _Drawing()
            choice = next(self.ids)
            box.nodes.append((choice, name, "diamond"))
            exits: list[str] = []
            for key, g in [*placed.branches.items(), *([("default", placed.default)] if placed.default else [])]:
                starts, ends = self.graph(g, box)
                box.edges += [(choice, s, str(key), False) for s in starts]
                exits += ends
            into.boxes.append((next(self.ids), "route" if name == "route" else f"route {name}", box))
            return [choice], exits
        if isinstance(unit, Loop) and placed.body is not None:
            box = _Drawing()
            starts, ends = self.graph(placed.body, box)
            box.edges += [(e, s, "again", True) for e in ends for s in starts]
            into.boxes.append((next(self.ids), f"loop {name} (at most {unit.max_iterations})", box))
            return starts, ends
        if isinstance(unit, Each) and placed.worker is not None:
            box = _Drawing()
            starts, ends = self.unit(placed.worker, box)
            over = ".".join([placed.bindings[unit.over].ref or unit.over, *unit.path])
            into.boxes.append((next(self.ids), f"each {name}: for every item of {over}", box))
            return starts, ends
        if placed.body is not None:  # a sub-workflow
            box = _Drawing()
            starts, ends = self.graph(placed.body, box)
            into.boxes.append((next(self.ids), f"workflow {name}", box))
            return starts, ends
        node = next(self.ids)
        into.nodes.append((node, name, {"python": "round", "agent": "subroutine"}.get(unit.kind, "box")))
        return [node], [node]


def _draw(graph: Graph) -> _Drawing:
    drawing = _Drawing()
    _Drawer().graph(graph, drawing)
    return drawing


def _quote(text: str) -> str:
    return text.replace('"', "'")


def mermaid(graph: Graph) -> str:
    shapes = {"box": '["{}"]', "round": '("{}")', "subroutine": '[["{}"]]', "diamond": '{{"{}"}}'}
    lines = ["flowchart TD"]

    def emit(d: _Drawing, indent: str) -> None:
        for node, label, shape in d.nodes:
            lines.append(indent + node + shapes[shape].format(_quote(label)))
        for box, label, inner in d.boxes:
            lines.append(f'{indent}subgraph {box}["{_quote(label)}"]')
            emit(inner, indent + "  ")
            lines.append(indent + "end")
        for a, b, label, dashed in d.edges:
            arrow = (f"-. {label} .->" if label else "-.->") if dashed else (f"-->|{label}|" if label else "-->")
            lines.append(f"{indent}{a} {arrow} {b}")

    emit(_draw(graph), "  ")
    return "\n".join(lines) + "\n"


def dot(graph: Graph, name: str) -> str:
    shapes = {"box": "box", "round": "ellipse", "subroutine": "component", "diamond": "diamond"}
    lines = [f'digraph "{_quote(name)}" {{', "  rankdir=TB;", "  node [fontname=Helvetica];"]

    def emit(d: _Drawing, indent: str) -> None:
        for node, label, shape in d.nodes:
            lines.append(f'{indent}{node} [label="{_quote(label)}", shape={shapes[shape]}];')
        for box, label, inner in d.boxes:
            lines.append(f"{indent}subgraph cluster_{box} {{")
            lines.append(f'{indent}  label="{_quote(label)}"; style=rounded;')
            emit(inner, indent + "  ")
            lines.append(indent + "}")
        for a, b, label, dashed in d.edges:
            attrs = [f'label="{_quote(label)}"'] if label else []
            attrs += ["style=dashed", "constraint=false"] if dashed else []
            lines.append(f"{indent}{a} -> {b}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")

    emit(_draw(graph), "  ")
    return "\n".join(lines) + "\n}\n"

"""Compiling an arrangement of units into a checked networkx graph, before anything runs.

How a unit's parameter gets its value (the binding rule, in order):
1. a constant given by calling the task (`home_town("Tony Blair")`);
2. the output of the task of the same name, which must run before it (`character >> line`
   gives `line(character)` the character); inside a loop, a task that runs later in the body
   gives its value from the previous iteration;
3. by position: when the required parameters still unbound are exactly as many as the tasks
   directly before it whose outputs it took no other way, they take those outputs in order
   (`(home_town("Tony Blair") | home_town("Elon Musk")) >> distance` fills `distance(h1, h2)`);
4. otherwise a run input of that name (`flow.run(topic=...)`), or the parameter's default.
Everything that cannot hold is a `ConfigError` naming the task: a cycle outside a loop, a name
that runs later or at the same time, an ambiguous name, a type that cannot match.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from ..core.dag import check_acyclic, new_graph
from ..core.errors import ConfigError, all_at_once
from .control import Each, Loop, Switch
from .nodes import MISSING, Node, Par, Param, Seq, Unit

if TYPE_CHECKING:
    import networkx as nx


@dataclass
class Binding:
    """Where one parameter's value comes from: a constant, a task's output (`path` reads a field
    of it), an input of the graph, or the previous loop iteration."""

    kind: Literal["const", "task", "input", "prev"]
    ref: str = ""
    path: tuple[str, ...] = ()
    value: Any = None
    default: Any = MISSING


@dataclass(eq=False)
class Placed:
    """A unit placed in a graph under its unique name, with its parameters bound."""

    unit: Unit[Any]
    name: str
    params: tuple[Param, ...]
    output_type: Any
    bindings: dict[str, Binding] = field(default_factory=dict[str, Binding])
    body: Graph | None = None  # a loop's body, a sub-workflow's graph
    branches: dict[Any, Graph] = field(default_factory=dict[Any, "Graph"])  # a route's
    default: Graph | None = None
    router: str = ""  # a route's router, by its name in the graph
    worker: Placed | None = None  # each
    item: str = ""
    exports: dict[str, Any] = field(default_factory=dict[str, Any])  # names it makes visible besides its own
    carry: tuple[str, ...] = ()  # a loop's inputs of its body's output type: each iteration gets the last output


@dataclass
class Graph:
    """A compiled (sub-)workflow: its units by name, the networkx DiGraph of their order and data
    edges, and the inputs it needs from outside with the tasks that need each."""

    nodes: dict[str, Placed]
    dag: nx.DiGraph[str]
    inputs: dict[str, Param] = field(default_factory=dict[str, Param])
    needs: dict[str, list[str]] = field(default_factory=dict[str, list[str]])

    @property
    def sinks(self) -> list[str]:
        return [n for n in self.nodes if self.dag.out_degree(n) == 0]

    def rounds(self) -> list[list[str]]:
        """Topological generations: each round's units can run at the same time."""
        import networkx as nx

        order = list(self.nodes)
        return [sorted(r, key=order.index) for r in nx.topological_generations(self.dag)]


class Names:
    """One namespace per workflow: every unit gets a unique name, a second use of one name gets
    `~2` (and the name is then ambiguous to bind by)."""

    def __init__(self) -> None:
        self.of: dict[int, str] = {}
        self.owner: dict[str, Unit[Any]] = {}
        self.ambiguous: set[str] = set()

    def assign(self, unit: Unit[Any]) -> str:
        if (known := self.of.get(id(unit))) is not None:
            return known
        name, n = unit.name, 1
        while name in self.owner:
            self.ambiguous.add(unit.name)
            n += 1
            name = f"{unit.name}~{n}"
        self.of[id(unit)], self.owner[name] = name, unit
        return name


def layout(node: Node) -> tuple[list[Unit[Any]], list[tuple[Unit[Any], Unit[Any]]], list[Unit[Any]], list[Unit[Any]]]:
    """Units in composition order, order edges, and the first and last units of `node`."""
    if isinstance(node, Unit):
        return [node], [], [node], [node]
    units: list[Unit[Any]] = []
    edges: list[tuple[Unit[Any], Unit[Any]]] = []
    if isinstance(node, Seq):
        first: list[Unit[Any]] = []
        last: list[Unit[Any]] = []
        for i, part in enumerate(node.parts):
            u, e, src, snk = layout(part)
            units += u
            edges += e
            edges += [(a, b) for a in last for b in src]
            first, last = (src if i == 0 else first), snk
        return units, edges, first, last
    if isinstance(node, Par):
        sources: list[Unit[Any]] = []
        sinks: list[Unit[Any]] = []
        for part in node.parts:
            u, e, src, snk = layout(part)
            units, edges, sources, sinks = units + u, edges + e, sources + src, sinks + snk
        return units, edges, sources, sinks
    raise ConfigError(f"{node!r} cannot be part of a workflow")


def compile_graph(node: Node, names: Names, *, looping: bool = False, declared: Sequence[str] | None = None) -> Graph:
    """`looping`: a loop body, where later tasks' outputs come from the previous iteration.
    `declared`: the only run inputs allowed (others are build-time errors)."""
    units, edges, _, _ = layout(node)
    unique = list({id(u): u for u in units}.values())
    named = [(names.assign(u), u) for u in unique]
    graph = Graph({}, new_graph())
    for name, unit in named:
        graph.nodes[name] = place(unit, name, names)
    graph.dag.add_nodes_from(graph.nodes)
    graph.dag.add_edges_from((names.of[id(a)], names.of[id(b)]) for a, b in edges)
    check_acyclic(graph.dag, what="task")
    Binder(graph, names, looping, declared).bind_all()
    return graph


def place(unit: Unit[Any], name: str, names: Names) -> Placed:
    if isinstance(unit, Loop):
        body = compile_graph(unit.body, names, looping=True)
        sink = only_sink(body, f"the body of loop {name!r}")
        exports = {n: p.output_type for n, p in body.nodes.items()}
        for p in body.nodes.values():
            exports.update(p.exports)
        out = body.nodes[sink].output_type
        carry = tuple(n for n, p in body.inputs.items() if out not in (Any, MISSING) and p.annotation == out)
        return Placed(unit, name, tuple(body.inputs.values()), out, body=body, exports=exports, carry=carry)
    if isinstance(unit, Switch):
        router = names.assign(unit.router)
        branches = {k: compile_graph(b, names) for k, b in unit.branches.items()}
        default = None if unit.default is None else compile_graph(unit.default, names)
        graphs = [*branches.values(), *([default] if default else [])]
        types_ = {repr(g.nodes[only_sink(g, f'a branch of route {name!r}')].output_type) for g in graphs}
        out = graphs[0].nodes[graphs[0].sinks[0]].output_type if len(types_) == 1 else Any
        params = merged_inputs([Param(router, unit.router.output_type)], graphs)
        return Placed(unit, name, params, out, branches=branches, default=default, router=router)
    if isinstance(unit, Each):
        worker = place(unit.worker, f"{name}[]", names)
        free = [p for p in worker.params if p.name not in unit.worker.bound]
        item = unit.item or (free[0].name if free else "")
        if item not in {p.name for p in free}:
            names_ = ", ".join(p.name for p in free) or "none"
            raise ConfigError(f"each({unit.worker.name}): the worker has no free parameter "
                              f"{item or '(none)'!r} to take the item (free: {names_})")
        others = tuple(p for p in free if p.name != item)
        if unit.over in {p.name for p in others}:
            raise ConfigError(f"each({unit.worker.name}): over={unit.over!r} is also one of the worker's parameters")
        return Placed(unit, name, (Param(unit.over), *others), unit.output_type, worker=worker, item=item)
    if unit.kind == "workflow":  # a workflow as a task of another (workflow.py builds on this module)
        inner: Graph = getattr(unit, "graph")  # noqa: B009
        return Placed(unit, name, tuple(inner.inputs.values()), unit.output_type, body=inner)
    return Placed(unit, name, unit.params, unit.output_type)


def only_sink(graph: Graph, what: str) -> str:
    sinks = graph.sinks
    if len(sinks) != 1:
        raise ConfigError(f"{what} ends in {len(sinks)} tasks ({', '.join(sinks)}); it must end in one: "
                          "join them with >> a final task")
    return sinks[0]


def merged_inputs(first: list[Param], graphs: Sequence[Graph]) -> tuple[Param, ...]:
    params = {p.name: p for p in first}
    for g in graphs:
        for p in g.inputs.values():
            if p.name not in params or (p.required and not params[p.name].required):
                params[p.name] = p
    return tuple(params.values())


class Binder:
    """Applies the binding rule (module doc) to every unit of one graph."""

    def __init__(self, graph: Graph, names: Names, looping: bool, declared: Sequence[str] | None) -> None:
        import networkx as nx

        self.graph, self.names, self.looping, self.declared = graph, names, looping, declared
        self.order = list(graph.nodes)
        self.preds = {n: sorted(graph.dag.predecessors(n), key=self.order.index) for n in self.order}
        self.ancestors = {n: nx.ancestors(graph.dag, n) for n in self.order}
        self.visible: dict[str, tuple[str, Any]] = {}
        for p in graph.nodes.values():
            for n, t in p.exports.items():
                self.visible.setdefault(n, (p.name, t))
        for p in graph.nodes.values():
            self.visible[p.name] = (p.name, p.output_type)

    def bind_all(self) -> None:
        """Bind every parameter of every task, then report every mistake found in one error."""
        problems: list[str] = []
        for placed in self.graph.nodes.values():
            problems += self.bind(placed)
            if isinstance(placed.unit, Each) and not problems:
                self.check_each(placed)
        if problems:
            raise ConfigError(all_at_once(problems))

    def bind(self, placed: Placed) -> list[str]:
        """Bind one task's parameters; the mistakes found, one per parameter."""
        bound = placed.unit.bound if not isinstance(placed.unit, Each | Loop | Switch) else {}
        taken: set[str] = set()
        loose: list[Param] = []
        problems: list[str] = []
        for param in placed.params:
            try:
                if param.name in bound:
                    placed.bindings[param.name] = Binding("const", value=bound[param.name])
                elif param.name in self.names.ambiguous:
                    raise ConfigError(f"task {placed.name!r} takes {param.name!r}, but several tasks are called "
                                      f"{param.name!r}; give them distinct names with .named(...)")
                elif param.name in self.visible:
                    taken.add(self.by_name(placed, param))
                else:
                    loose.append(param)
            except ConfigError as e:
                problems.append(str(e))
                if param.name in self.visible:  # its source stays its own: no second, positional mistake
                    taken.add(self.visible[param.name][0])
        before = [n for n in self.preds[placed.name] if n not in taken]
        required = [p for p in loose if p.required]
        if required and len(required) == len(before):
            for param, source in zip(required, before, strict=True):
                try:
                    self.check_type(placed, param, source, self.visible[source][1])
                except ConfigError as e:
                    problems.append(str(e))
                placed.bindings[param.name] = Binding("task", source)
                self.graph.dag.add_edge(source, placed.name)
            loose = [p for p in loose if not p.required]
        for param in loose:
            placed.bindings[param.name] = Binding("input", param.name, default=param.default)
            try:
                self.need(param, placed.name)
            except ConfigError as e:
                problems.append(str(e))
        return problems

    def by_name(self, placed: Placed, param: Param) -> str:
        owner, typ = self.visible[param.name]
        if owner in self.ancestors[placed.name]:
            self.check_type(placed, param, param.name, typ)
            placed.bindings[param.name] = Binding("task", param.name)
            self.graph.dag.add_edge(owner, placed.name)
            return owner
        if self.looping:
            if param.required:
                raise ConfigError(f"task {placed.name!r} takes {param.name!r} from the previous iteration of its "
                                  f"loop, and on the first there is none: give the parameter a default "
                                  f"({param.name}: ... | None = None)")
            placed.bindings[param.name] = Binding("prev", param.name, default=param.default)
            return owner
        if owner == placed.name:
            raise ConfigError(f"task {placed.name!r} takes its own output as its input {param.name!r}; only a loop "
                              "can feed a task its previous output: wrap it in loop(...)")
        when = "after it" if placed.name in self.ancestors[owner] else "at the same time"
        raise ConfigError(f"task {placed.name!r} takes {param.name!r}, the output of task {owner!r}, but "
                          f"{owner!r} runs {when}. Fix: order them with {owner} >> {placed.name}")

    def need(self, param: Param, by: str) -> None:
        if self.declared is not None and param.name not in self.declared:
            raise ConfigError(f"task {by!r} needs {param.name!r}, which no task before it produces and which is "
                              f"not a declared input ({', '.join(self.declared) or 'none'}). Fix: rename the "
                              "parameter after a task that runs before it, or declare the input")
        known = self.graph.inputs.get(param.name)
        if known is None or (param.required and not known.required):
            self.graph.inputs[param.name] = param
        self.graph.needs.setdefault(param.name, []).append(by)

    def check_type(self, placed: Placed, param: Param, source: str, produced: Any) -> None:
        if not compatible(produced, param.annotation):
            raise ConfigError(f"task {placed.name!r}: parameter {param.name!r} expects {type_name(param.annotation)}"
                              f", but {source!r} produces {type_name(produced)}")

    def check_each(self, placed: Placed) -> None:
        unit = placed.unit
        assert isinstance(unit, Each) and placed.worker is not None
        binding = placed.bindings[unit.over]
        binding.path = unit.path
        if binding.kind != "task":
            return
        produced = self.visible[binding.ref][1]
        for attr in unit.path:
            fields = getattr(produced, "model_fields", None)
            if fields is None or attr not in fields:
                if fields is not None:
                    raise ConfigError(f"each({unit.worker.name}): {type_name(produced)} has no field {attr!r} "
                                      f"(fields: {', '.join(fields)})")
                return
            produced = fields[attr].annotation
        if inspect.isclass(produced) and issubclass(produced, BaseModel):
            lists = [n for n, f in produced.model_fields.items() if get_origin(f.annotation) is list]
            hint = f"over='{'.'.join([binding.ref, *unit.path, lists[0] if lists else '<field>'])}'"
            raise ConfigError(f"each({unit.worker.name}) maps over {'.'.join([binding.ref, *unit.path])!r}, whose "
                              f"output is {produced.__name__}, not a list. Fix: name the list field, e.g. {hint}")
        if get_origin(produced) in (list, tuple) and get_args(produced):
            item = next(p for p in placed.worker.params if p.name == placed.item)
            self.check_type(placed.worker, item, f"each item of {binding.ref!r}", get_args(produced)[0])


def type_name(t: Any) -> str:
    return getattr(t, "__name__", None) or repr(t).replace("typing.", "")


def compatible(produced: Any, wanted: Any) -> bool:
    """Whether a value of type `produced` can be given to a parameter of type `wanted`: lenient
    (anything unknown passes), strict where both are plain classes."""
    if produced in (Any, MISSING) or wanted in (Any, MISSING, object, inspect.Parameter.empty):
        return True
    if get_origin(produced) is Annotated:
        produced = get_args(produced)[0]
    if get_origin(wanted) is Annotated:
        wanted = get_args(wanted)[0]
    if get_origin(wanted) in (Union, types.UnionType):
        return any(compatible(produced, w) for w in get_args(wanted))
    if get_origin(produced) in (Union, types.UnionType):
        return any(compatible(p, wanted) for p in get_args(produced))
    if get_origin(produced) is Literal:
        return all(compatible(type(v), wanted) for v in get_args(produced))
    if get_origin(wanted) is Literal:
        return True
    have, want = get_origin(produced) or produced, get_origin(wanted) or wanted
    if inspect.isclass(have) and inspect.isclass(want):
        return issubclass(have, want) or (want is float and have is int)
    return True

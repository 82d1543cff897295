"""The dataflow graph of one call of a program (networkx), shared by analysis, liveness, hashing.

Nodes: ("in", k) for parameter k, ("stmt", i) for statement i, ("out", j) for return value j
(0 is the update, 1.. the state slots). An edge u -> v with attribute `pos` says that v reads
the value defined by u as its argument number `pos` (uses resolve to the latest definition,
so a reassigned name is a different value -- the graph is in SSA form).
"""

from __future__ import annotations

import networkx as nx

from optsearch.primitives.program import Program


def definitions(program: Program):
    """Yield (node, reads) per statement, where reads[pos] is the defining node or None."""
    current = {name: ("in", k) for k, name in enumerate(program.params)}
    for i, stmt in enumerate(program.statements):
        reads = [current[a] if isinstance(a, str) else None for a in stmt.args]
        yield ("stmt", i), reads
        current[stmt.target] = ("stmt", i)
    yield "returns", [current[name] for name in program.returns]


def build_graph(program: Program) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(("in", k) for k in range(len(program.params)))
    for node, reads in definitions(program):
        if node == "returns":
            for j, source in enumerate(reads):
                graph.add_edge(source, ("out", j), pos=0)
            continue
        graph.add_node(node)
        for pos, source in enumerate(reads):
            if source is not None:
                graph.add_edge(source, node, pos=pos)
    return graph


def slot_input(program: Program, slot: int) -> tuple[str, int]:
    return ("in", 2 + slot)


def slot_output(slot: int) -> tuple[str, int]:
    return ("out", 1 + slot)


UPDATE_OUT = ("out", 0)
GRAD_IN = ("in", 1)

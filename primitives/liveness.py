"""Liveness with cross-iteration state: which statements and state slots matter.

A statement is live if its value reaches the update, or reaches the output of a state slot
whose input is read (before being overwritten) by live code in the next call. Slot liveness
and statement liveness depend on each other, so iterate to a fixed point. Dead statements stay
in the genome (neutral drift helps the search) but are skipped by execution, hashing, export.
"""

from __future__ import annotations

import networkx as nx

from optsearch.primitives.analysis import T, value_kinds
from optsearch.primitives.dataflow import UPDATE_OUT, build_graph, slot_input, slot_output
from optsearch.primitives.program import Program


def _live_nodes(program: Program):
    graph = build_graph(program)
    live_slots: set[int] = set()
    while True:
        sinks = [UPDATE_OUT] + [slot_output(s) for s in sorted(live_slots)]
        live = set(sinks).union(*(nx.ancestors(graph, n) for n in sinks))
        read = {s for s in range(program.n_slots) if slot_input(program, s) in live}
        if read <= live_slots:
            return live, frozenset(live_slots)
        live_slots |= read


def live_indices(program: Program) -> frozenset[int]:
    """Indices of live statements."""
    live, _ = _live_nodes(program)
    return frozenset(i for kind, i in (n for n in live if isinstance(n, tuple)) if kind == "stmt")


def live_state_slots(program: Program) -> frozenset[int]:
    """Indices (0-based, in parameter order) of the state slots that carry information."""
    return _live_nodes(program)[1]


def live_program(program: Program) -> Program:
    """The program without dead statements: same signature, and still a valid program.

    A dead slot's new value is never read, so it may return any tensor; but the name it
    returned may have been defined only by a dead statement (or now name a scalar), so such a
    slot returns its own input, or else the update, instead.
    """
    live, live_slots = _live_nodes(program)
    kept = [s for i, s in enumerate(program.statements) if ("stmt", i) in live]
    live_version = program.replace_statements(kept)
    if len(live_slots) == program.n_slots:
        return live_version
    kinds = value_kinds(live_version).names
    returns = list(program.returns)
    for s, slot in enumerate(program.slots):
        if s not in live_slots and kinds.get(returns[1 + s]) != T:
            returns[1 + s] = slot if kinds.get(slot) == T else returns[0]
    return Program(program.params, tuple(kept), tuple(returns), program.name)


def dead_fraction(program: Program) -> float:
    n = len(program.statements)
    return 0.0 if n == 0 else 1.0 - len(live_indices(program)) / n

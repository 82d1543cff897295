"""Abstract execution: infer the kind (tensor or scalar) of every value without numerics.

Invalid children of the mutator are rejected here before they cost an evaluation: reductions
of scalars, a scalar where a tensor is required, a scalar update or state, and programs whose
update never depends on the gradient (not even through the state carried between calls).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from optsearch.primitives.dataflow import GRAD_IN, UPDATE_OUT, build_graph, slot_input, slot_output
from optsearch.primitives.pool import ANY, POOL, SCALAR, TENSOR, result_kind
from optsearch.primitives.program import Program, ProgramError


@dataclass(frozen=True)
class Analysis:
    kinds: tuple[str, ...]  # kind of each statement's result
    return_kinds: tuple[str, ...]


def infer_kinds(program: Program) -> Analysis:
    env = {name: TENSOR for name in program.params[:-1]}
    env[program.lr] = SCALAR
    kinds = []
    for stmt in program.statements:
        prim = POOL[stmt.op]
        arg_kinds = [env[a] if isinstance(a, str) else SCALAR for a in stmt.args]
        for pos, (need, have) in enumerate(zip(prim.arg_kinds, arg_kinds)):
            if need != ANY and need != have:
                raise ProgramError(f"argument {pos + 1} of {stmt.op}() must be a {need}, "
                                   f"'{stmt.args[pos]}' is a {have}", stmt.line, stmt.col)
        kind = result_kind(prim, arg_kinds)
        env[stmt.target] = kind
        kinds.append(kind)
    return Analysis(tuple(kinds), tuple(env[name] for name in program.returns))


def depends_on_gradient(program: Program) -> bool:
    """True if the update reads g in this call or through a state slot written from g."""
    graph = build_graph(program)
    tainted = {GRAD_IN}
    while True:
        reach = set().union(*(nx.descendants(graph, n) | {n} for n in tainted))
        if UPDATE_OUT in reach:
            return True
        grown = tainted | {slot_input(program, s) for s in range(program.n_slots)
                           if slot_output(s) in reach}
        if grown == tainted:
            return False
        tainted = grown


def check(program: Program) -> Analysis:
    """Validate kinds and gradient dependence; raises ProgramError naming the line."""
    analysis = infer_kinds(program)
    for j, kind in enumerate(analysis.return_kinds):
        if kind != TENSOR:
            what = "the update" if j == 0 else f"state slot '{program.slots[j - 1]}'"
            raise ProgramError(f"{what} must be a tensor, '{program.returns[j]}' is a scalar",
                               *_return_position(program))
    if not depends_on_gradient(program):
        raise ProgramError("the update does not depend on the gradient",
                           *_return_position(program))
    return analysis


def _return_position(program: Program) -> tuple[int, int]:
    if program.return_line:
        return program.return_line, program.return_col
    return ((program.statements[-1].line + 1) if program.statements else 2), 0

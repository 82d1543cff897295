"""Abstract execution: infer the kind of every value without numerics.

Kinds. A value is a parameter-shaped tensor (T), or a scalar. Scalars come in two kinds: per
parameter (P: a reduction of a tensor, or a state slot held as a 0-d tensor) and shared by the
whole parameter group (G: the learning-rate input and constants). The pool's argument
requirements only distinguish tensor from scalar; the exporter uses P and G to decide what
becomes a Python number and what a 0-d tensor.

Invalid children of the mutator are rejected here before they cost an evaluation: reductions
of scalars, a scalar where a tensor is required, a scalar update or state, and programs whose
update never depends on the gradient (not even through the state carried between calls).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from optsearch.primitives.dataflow import GRAD_IN, UPDATE_OUT, build_graph, slot_input, slot_output
from optsearch.primitives.pool import ANY, POOL, SCALAR, TENSOR, Primitive
from optsearch.primitives.program import Program, ProgramError

T, P, G = "T", "P", "G"  # tensor, per-parameter scalar, group scalar


def coarse(kind: str) -> str:
    """The pool's view of a kind: TENSOR or SCALAR."""
    return TENSOR if kind == T else SCALAR


def result_kind(prim: Primitive, arg_kinds: list[str]) -> str:
    """Kind of a call's result given its argument kinds (abstract execution of one statement)."""
    if prim.result == "elementwise":
        return T if T in arg_kinds else (P if P in arg_kinds else G)
    if prim.result == TENSOR:
        return T
    return P if prim.arity else G  # reductions give per-parameter scalars; constants are G


@dataclass(frozen=True)
class ValueKinds:
    inputs: tuple[str, ...]  # kind of each parameter
    statements: tuple[str, ...]  # kind of each statement's result
    names: dict  # variable name -> kind of its last definition
    mismatches: tuple  # (statement, argument position) of each argument of the wrong kind

    def by_node(self) -> dict:
        """Kinds keyed by dataflow node: ("in", k) and ("stmt", i)."""
        return {**{("in", k): kind for k, kind in enumerate(self.inputs)},
                **{("stmt", i): kind for i, kind in enumerate(self.statements)}}


def value_kinds(program: Program, uniform_slots=frozenset()) -> ValueKinds:
    """The one kind inference: w and g are tensors, lr a group scalar, each state slot a tensor
    unless it is in `uniform_slots` (then a per-parameter scalar). Arguments of the wrong kind
    are listed, not raised: the caller decides what a mismatch means."""
    uniform = {slot_input(program, s)[1]: P for s in uniform_slots}
    inputs = (*(uniform.get(k, T) for k in range(len(program.params) - 1)), G)
    env = dict(zip(program.params, inputs))
    kinds, mismatches = [], []
    for i, stmt in enumerate(program.statements):
        prim = POOL[stmt.op]
        arg_kinds = [env[a] if isinstance(a, str) else G for a in stmt.args]
        for pos, (need, have) in enumerate(zip(prim.arg_kinds, arg_kinds)):
            if need != ANY and (need == TENSOR) != (have == T):
                mismatches.append((i, pos))
        env[stmt.target] = kind = result_kind(prim, arg_kinds)
        kinds.append(kind)
    return ValueKinds(inputs, tuple(kinds), env, tuple(mismatches))


@dataclass(frozen=True)
class Analysis:
    kinds: tuple[str, ...]  # kind (TENSOR or SCALAR) of each statement's result
    return_kinds: tuple[str, ...]


def infer_kinds(program: Program) -> Analysis:
    """Tensor or scalar per statement and return value; raises ProgramError at the first
    argument of the wrong kind."""
    values = value_kinds(program)
    if values.mismatches:
        i, pos = values.mismatches[0]
        stmt, need = program.statements[i], POOL[program.statements[i].op].arg_kinds[pos]
        have = TENSOR if need == SCALAR else SCALAR
        raise ProgramError(f"argument {pos + 1} of {stmt.op}() must be a {need}, "
                           f"'{stmt.args[pos]}' is a {have}", stmt.line, stmt.col)
    return Analysis(tuple(map(coarse, values.statements)),
                    tuple(coarse(values.names[name]) for name in program.returns))


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

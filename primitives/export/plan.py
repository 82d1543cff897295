"""The plan of the update function: value kinds, buffer lifetimes, the fused weight update.

Values are parameter-shaped tensors (T), per-parameter scalars (P: 0-d tensors from reductions
and from *uniform* state slots such as Adam's step counter, stored 0-d) and group scalars
(G: Python numbers, or 0-d tensors under torch.compile) -- the kinds of `primitives.analysis`.
The last use of every value lets the emitter write a result into a dead temporary or state
buffer in place; the final `w -= (x + w * wd) * lr` (decoupled weight decay) and `w -= x * lr`
are recognised and fused, so exported Lion makes as few passes over memory as a hand-written
one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from optsearch.primitives.analysis import G, P, T, value_kinds
from optsearch.primitives.dataflow import build_graph, definitions, slot_input
from optsearch.primitives.export.spec import Spec
from optsearch.primitives.liveness import live_state_slots
from optsearch.primitives.pool import POOL


@dataclass
class Plan:
    kinds: dict
    reads: dict  # live statement -> SSA reads; constants are ("const", i, pos)
    returns: list
    uniform: frozenset[int]
    slots: tuple[int, ...]  # live state slots, in parameter order
    final: tuple  # ("dwd", b, s, c) | ("scale", a, s) | ("sub", u)
    elided: frozenset[int]
    last_use: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- kinds

def _uniform_sources(graph, spec: Spec, node, uniform) -> set[int]:
    """The uniform slots whose input reaches `node`."""
    reach = nx.ancestors(graph, node) | {node}
    return {k for k in uniform if slot_input(spec.program, k) in reach}


def _needs_tensor(spec: Spec, graph, uniform: set[int]):
    """Kinds with these slots uniform, and the uniform slots that something needs as a tensor:
    a tensor-only argument, the update, or a new slot value that is a tensor."""
    values = value_kinds(spec.program, uniform)
    kinds = values.by_node()
    *stmt_reads, (_, returns) = definitions(spec.program)
    culprits = [stmt_reads[i][1][pos] for i, pos in values.mismatches if i in spec.live]
    if kinds[returns[0]] != T:  # the update must stay a tensor: its slots are not uniform
        culprits.append(returns[0])
    bad = set().union(*(_uniform_sources(graph, spec, n, uniform) for n in culprits))
    bad |= {k for k in uniform if kinds[returns[1 + k]] == T}
    return kinds, returns, bad


def _kinds_and_uniform_slots(spec: Spec):
    """Fixed point: a live slot is uniform (0-d state) unless something needs it as a tensor."""
    uniform = set(live_state_slots(spec.program))
    graph = build_graph(spec.program)
    while True:
        kinds, returns, bad = _needs_tensor(spec, graph, uniform)
        if not bad & uniform:
            return kinds, returns, frozenset(uniform)
        uniform -= bad


# ----------------------------------------------------------------------------- plan

def _ssa_reads(spec: Spec):
    out = {}
    for node, reads in definitions(spec.program):
        if node == "returns":
            return out, list(reads)
        i = node[1]
        if i in spec.live:
            out[i] = [r if r is not None else ("const", i, pos) for pos, r in enumerate(reads)]


def _uses(plan: Plan, n: int, elided=frozenset()) -> dict:
    """Where each value is read: statement indices, n for the weight update, n + 1 for the
    copies into the state buffers."""
    uses: dict = {}
    for i, reads in plan.reads.items():
        for r in reads:
            uses.setdefault(r, []).append(n if i in elided else i)
    if plan.final[0] == "sub":
        uses.setdefault(plan.returns[0], []).append(n)
    for k in plan.slots:
        uses.setdefault(plan.returns[1 + k], []).append(n + 1)
    return uses


def make_plan(spec: Spec) -> Plan:
    kinds, returns, uniform = _kinds_and_uniform_slots(spec)
    reads, _ = _ssa_reads(spec)
    for rs in reads.values():
        for r in rs:
            kinds.setdefault(r, G)  # constants
    slots = tuple(sorted(live_state_slots(spec.program)))
    plan = Plan(kinds, reads, returns, uniform, slots, ("sub", returns[0]), frozenset())
    n = len(spec.program.statements)
    plan.final, plan.elided = _final_step(spec, plan, _uses(plan, n))
    plan.last_use = {v: max(sites) for v, sites in _uses(plan, n, plan.elided).items()}
    return plan


# ----------------------------------------------------------------------------- the weight update

def _single_use(spec: Spec, uses: dict, node, op: str, user: int) -> bool:
    """`node` is a statement calling `op`, read only by `user`."""
    return (node[0] == "stmt" and spec.program.statements[node[1]].op == op
            and uses.get(node) == [user])


def _final_step(spec: Spec, plan: Plan, uses: dict):
    """Recognise `w -= (x + w * c) * s` and `w -= x * s`: fused into p.mul_ / p.add_(alpha)."""
    u, n = plan.returns[0], len(spec.program.statements)
    if not _single_use(spec, uses, u, "mul", n):
        return ("sub", u), frozenset()
    i = u[1]
    for a, s in (plan.reads[i], plan.reads[i][::-1]):
        if plan.kinds[a] != T or plan.kinds[s] not in (G, P):
            continue
        decay = _decoupled_decay(spec, plan, uses, a, i)
        if decay:
            b, c, j, k = decay
            return ("dwd", b, s, c), frozenset({i, j, k})
        return ("scale", a, s), frozenset({i})
    return ("sub", u), frozenset()


def _decoupled_decay(spec: Spec, plan: Plan, uses: dict, a, i: int):
    """If `a` is x + w * c (each statement read once, x a tensor, c a scalar): (x, c, index of
    the addition, index of the multiplication); else None."""
    if not _single_use(spec, uses, a, "add", i):
        return None
    j = a[1]
    for d, b in (plan.reads[j], plan.reads[j][::-1]):
        if not _single_use(spec, uses, d, "mul", j):
            continue
        for w, c in (plan.reads[d[1]], plan.reads[d[1]][::-1]):
            if w == ("in", 0) and plan.kinds[c] in (G, P) and plan.kinds[b] == T:
                return b, c, j, d[1]
    return None


def elementwise(spec: Spec, plan: Plan) -> bool:
    """True when every element's update depends only on that element: no live reduction and
    no uniform slot (a chunked call would advance e.g. a step counter once per chunk)."""
    reduces = any(POOL[spec.program.statements[i].op].reduces for i in plan.reads)
    return not reduces and not (plan.uniform & set(plan.slots))

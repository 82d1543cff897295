"""The mutator: insert a statement, delete one, or modify one argument.

A fourth operator, "replace" (weight `mutation.replace_weight`), swaps a statement's function
for another from the pool, keeping the arguments that still fit: one step from
`update = m / sqrt_v` to `update = sign(m)`. The paper's three operators need an insert of
exactly the right statement at exactly the right place for that: 5e-5 of AdamW's children
are sign-based with the paper's operators, 4e-3 with "replace" added
(scripts/research/mutation_odds.py, 20000 children), and a CPU budget buys ~10^3 evaluations.
See BENCHMARKS.md, "Mutation odds".

A constant in [0.5, 1) can also be jittered in `1 - c` ("ema", on by default,
`mutation.ema_jitter`): such constants are mostly interp weights, whose useful values
(0.9, 0.99, 0.999) differ in their distance to 1, not in their size -- an addition to the
paper's operators, made because a CPU budget cannot afford the paper's ~50% of children
whose beta was scaled past 1 (an exploding EMA).

Half of all inserts define a new variable, which nothing reads: structural hashing ignores
dead code, so such a child hashes as its parent and is retried. `mutation.splice = true`
rewires one later read to the new value (`_splice`), preferring a read of one of its own
arguments -- `x -> f(x, ...)` on the way to one consumer, one insert from Signum's `sign(m)`
to Lion's `sign(interp(g, m, c))`. It is off by default: with it, target-mode searches
recovered Lion less often and grew long programs of live filler (BENCHMARKS.md, "Recovery").

Every choice draws from an injected `numpy.random.Generator`, so a run is reproducible from
its seed. Operators only build type-plausible children from the pool table; `is_valid` (names
defined before use, then `primitives.analysis.check`) is the judge, and the mutator retries
until a child is valid *and* its structural hash differs from the parent's -- a child that
only changes dead code or renames variables would be a wasted evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optsearch.primitives.analysis import check, infer_kinds
from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.pool import ANY, POOL, POOLS, SCALAR, TENSOR
from optsearch.primitives.printer import format_arg, format_statement
from optsearch.primitives.program import Program, ProgramError, Statement
from optsearch.search.config import MutationConfig

OPERATORS = ("insert", "delete", "modify", "replace")
POOL_NAMES = POOLS["default"]  # insertion samples functions uniformly from the selection
MAX_CONSTANT = 1e300  # the parser rejects larger literals; children must round-trip
# "ema" jitter applies to constants in [EMA_LOW, 1): interp weights. A small constant (a peak
# lr 1e-3, a weight decay 0.01) would be sent negative or to ~0.5 by it; "scale" suits those.
EMA_LOW = 0.5


@dataclass(frozen=True)
class Mutation:
    child: Program
    op: str  # one of OPERATORS
    detail: str  # human-readable, e.g. "modify 3.3 (scale): 0.9 -> 0.95" (statement.argument)
    structural_hash: str
    invalid: int  # attempts rejected by is_valid before this child
    unchanged: int  # well-formed attempts with the parent's structural hash (not kind-checked)


class MutationFailed(RuntimeError):
    """No valid, structurally new child within `max_tries` attempts."""


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _well_formed(program: Program) -> bool:
    """Every name read is defined before, every constant is a literal the parser accepts."""
    defined = set(program.params)
    for stmt in program.statements:
        for arg in stmt.args:
            if isinstance(arg, str) and arg not in defined:
                return False
            if not isinstance(arg, str) and not (math.isfinite(arg) and abs(arg) < MAX_CONSTANT):
                return False
        defined.add(stmt.target)
    return all(name in defined for name in program.returns)


def is_valid(program: Program) -> bool:
    """Would the program parse and pass `check`? (Operators can break def-before-use.)"""
    if not _well_formed(program):
        return False
    try:
        check(program)
    except ProgramError:
        return False
    return True


def _scope(program: Program, kinds, index: int) -> dict[str, str]:
    """Variables readable just before statement `index`, with their kinds at that point."""
    scope = {name: TENSOR for name in program.params[:-1]}
    scope[program.lr] = SCALAR
    for stmt, kind in zip(program.statements[:index], kinds[:index]):
        scope[stmt.target] = kind
    return scope


def _fits(need: str, have: str) -> bool:
    return need == ANY or need == have


def _random_arg(need: str, scope: dict[str, str], rng):
    # Variables of a fitting kind and, where a scalar fits, one "new constant" option.
    options = [name for name, kind in scope.items() if _fits(need, kind)]
    if need != TENSOR:
        options.append(None)
    if not options:
        return None, False
    choice = _pick(rng, options)
    return (float(rng.normal()), True) if choice is None else (choice, True)


def _fresh_name(program: Program) -> str:
    used = set(program.params) | {s.target for s in program.statements}
    k = 1
    while f"t{k}" in used:
        k += 1
    return f"t{k}"


def insert(program: Program, kinds, rng, names=POOL_NAMES, splice: bool = False):
    index = int(rng.integers(len(program.statements) + 1))
    scope = _scope(program, kinds, index)
    op = _pick(rng, names)
    args = []
    for need in POOL[op].arg_kinds:
        arg, ok = _random_arg(need, scope, rng)
        if not ok:
            return None, ""
        args.append(arg)
    # Overwriting an existing variable (w, g, a slot, lr, a temporary) changes what every later
    # statement reads; a new variable is dead code unless `splice` makes one later read use it.
    fresh = rng.random() < 0.5
    target = _fresh_name(program) if fresh else _pick(rng, list(scope))
    stmt = Statement(target, op, tuple(args))
    statements = list(program.statements)
    statements.insert(index, stmt)
    detail = f"insert {index + 1}: {format_statement(stmt)}"
    if fresh and splice:
        spliced = _splice(statements, index, rng)
        if spliced is None:
            return None, ""
        detail += f", read by {spliced + 1}"
    return program.replace_statements(statements), detail


def _splice(statements: list, index: int, rng) -> int | None:
    """Make statement `index`'s new value live: one later read of a variable becomes a read of
    it. A read of one of its own arguments is preferred -- `x -> f(x, ...)` on the way to one
    consumer, the step from Signum's `sign(m)` to Lion's `sign(interp(g, m, c))` -- else any
    later read. Returns the rewired statement's index, or None if nothing later reads a name."""
    new = statements[index]
    reads, own = [], []
    redefined = set()
    for j in range(index + 1, len(statements)):
        for pos, arg in enumerate(statements[j].args):
            if isinstance(arg, str) and arg not in redefined:
                reads.append((j, pos))
                if arg in new.args:
                    own.append((j, pos))
        redefined.add(statements[j].target)
    if not reads:
        return None
    j, pos = _pick(rng, own or reads)
    stmt = statements[j]
    statements[j] = Statement(stmt.target, stmt.op,
                              stmt.args[:pos] + (new.target,) + stmt.args[pos + 1:])
    return j


def delete(program: Program, kinds, rng):
    index = int(rng.integers(len(program.statements)))
    statements = list(program.statements)
    removed = statements.pop(index)
    return (program.replace_statements(statements),
            f"delete {index + 1}: {format_statement(removed)}")


def modify(program: Program, kinds, rng, ema: bool = True):
    with_args = [i for i, s in enumerate(program.statements) if s.args]
    index = _pick(rng, with_args)
    stmt = program.statements[index]
    pos = int(rng.integers(len(stmt.args)))
    need, current = POOL[stmt.op].arg_kinds[pos], stmt.args[pos]
    others = [n for n, k in _scope(program, kinds, index).items() if _fits(need, k) and n != current]
    choices = (["variable"] if others else []) + (["constant"] if need != TENSOR else [])
    choices += [] if isinstance(current, str) else ["scale"]
    choices += ["ema"] if ema and not isinstance(current, str) and EMA_LOW <= current < 1 else []
    if not choices:
        return None, ""
    how = _pick(rng, choices)
    if how == "variable":
        new = _pick(rng, others)
    elif how == "constant":
        new = float(rng.normal())
    elif how == "scale":  # multiplicative jitter keeps the sign and explores orders of magnitude
        new = float(current * 2.0 ** rng.normal())
    else:  # "ema": jitter the distance to 1 -- an interp weight's memory, 1/(1-c) steps --
        # on a log scale; c stays < 1, where "scale" sends 0.999 past 1 half of the time
        new = float(1.0 - (1.0 - current) * 2.0 ** rng.normal())
    args = stmt.args[:pos] + (new,) + stmt.args[pos + 1:]
    statements = list(program.statements)
    statements[index] = Statement(stmt.target, stmt.op, args)
    detail = f"modify {index + 1}.{pos + 1} ({how}): {format_arg(current)} -> {format_arg(new)}"
    return program.replace_statements(statements), detail


def replace(program: Program, kinds, rng, names=POOL_NAMES):
    index = int(rng.integers(len(program.statements)))
    stmt = program.statements[index]
    op = _pick(rng, [name for name in names if name != stmt.op])
    scope = _scope(program, kinds, index)
    args = []
    for pos, need in enumerate(POOL[op].arg_kinds):
        # Keep the old argument in the same position where its kind fits (m / sqrt_v ->
        # sign(m)): the statement still reads the values it read before.
        old = stmt.args[pos] if pos < len(stmt.args) else None
        if old is not None and (_fits(need, scope[old]) if isinstance(old, str)
                                else need != TENSOR):
            args.append(old)
            continue
        arg, ok = _random_arg(need, scope, rng)
        if not ok:
            return None, ""
        args.append(arg)
    new = Statement(stmt.target, op, tuple(args))
    statements = list(program.statements)
    statements[index] = new
    return (program.replace_statements(statements),
            f"replace {index + 1}: {format_statement(stmt)} -> {format_statement(new)}")


class Mutator:
    def __init__(self, config: MutationConfig | None = None):
        self.config = config or MutationConfig()
        c = self.config
        self.weights = np.array([c.insert_weight, c.delete_weight, c.modify_weight,
                                 c.replace_weight], float)
        self.names = POOLS[c.pool]  # the functions inserts and replacements draw from

    def applicable(self, program: Program) -> list[str]:
        ok = {"insert": len(program.statements) < self.config.max_statements,
              "delete": len(program.statements) > 0,
              "modify": any(s.args for s in program.statements),
              "replace": len(program.statements) > 0}
        return [op for op, w in zip(OPERATORS, self.weights) if ok[op] and w > 0]

    def _choose(self, ops: list[str], rng) -> str:
        # One uniform draw against cumulative weights (rng.choice(p=...) is 10x slower).
        cumulative = np.cumsum([self.weights[OPERATORS.index(op)] for op in ops])
        return ops[min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1],
                                           side="right")), len(ops) - 1)]

    def mutate(self, parent: Program, rng, parent_hash: str | None = None) -> Mutation:
        """A valid child whose structural hash differs from the parent's."""
        parent_hash = parent_hash or structural_hash(parent)
        kinds = infer_kinds(parent).kinds
        ops = self.applicable(parent)
        invalid = unchanged = 0
        for _ in range(self.config.max_tries if ops else 0):
            op = self._choose(ops, rng)
            if op == "modify":
                child, detail = modify(parent, kinds, rng, ema=self.config.ema_jitter)
            elif op == "insert":
                child, detail = insert(parent, kinds, rng, self.names, self.config.splice)
            elif op == "replace":
                child, detail = replace(parent, kinds, rng, self.names)
            else:
                child, detail = delete(parent, kinds, rng)
            if child is None or not _well_formed(child):
                invalid += 1
                continue
            # Most attempts touch dead code: compare hashes before the costlier kind check.
            child_hash = structural_hash(child)
            if child_hash == parent_hash:
                unchanged += 1
                continue
            if not is_valid(child):
                invalid += 1
                continue
            return Mutation(child, op, detail, child_hash, invalid, unchanged)
        raise MutationFailed(f"no valid new child in {self.config.max_tries} tries "
                             f"(operators: {', '.join(ops) or 'none'})")

    def random_program(self, rng, n_statements: int, n_slots: int = 2) -> Program:
        """A random valid program: `n_statements` inserts into `update = g * lr`, each one
        changing the live dataflow (dead inserts would leave the skeleton's behaviour)."""
        slots = ("m", "v") if n_slots == 2 else tuple(f"s{k + 1}" for k in range(n_slots))
        program = Program(("w", "g", *slots, "lr"), (Statement("update", "mul", ("g", "lr")),),
                          ("update", *slots))
        current_hash = structural_hash(program)
        for _ in range(self.config.max_tries):
            if len(program.statements) > n_statements:
                return program
            child, _ = insert(program, infer_kinds(program).kinds, rng, self.names,
                              self.config.splice)
            if child is not None and is_valid(child) and structural_hash(child) != current_hash:
                program, current_hash = child, structural_hash(child)
        raise MutationFailed(f"could not build a random program in {self.config.max_tries} tries")

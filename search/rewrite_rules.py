"""Local rewrite rules of the simplifier, on programs in SSA form (every name assigned once).

SSA makes a rewrite local: a name means one value everywhere, so a statement can be replaced
or bypassed without checking what happens to its arguments' names in between. Each rule is
`rule(program) -> Program | None` (None: nothing to rewrite) and rewrites every match it finds
in one pass; the statements it makes dead are left to dead-code removal.

Exact rules hold in the algebra of `primitives.symbolic` (eps of the safe division taken as
0). `near_identity` is not exact: it is the ablation of the paper's `clip(g, lr)` / `arcsin(g)`
preprocessing, which is the identity only while |g| is small (see its docstring).
"""

from __future__ import annotations

import re

import sympy
import torch

from primitives.liveness import live_indices, live_state_slots
from primitives.pool import POOL
from primitives.program import Program, Statement
from primitives.symbolic import to_sympy

_SUFFIX = re.compile(r"^(.*)_(\d+)$")

# Odd functions with f(x) = x + O(x^3) near 0, and clip(x, c), which is x for |x| <= |c|.
NEAR_IDENTITY = ("arcsin", "arctan", "arcsinh", "arctanh", "sin", "sinh", "tan", "tanh",
                 "clip")


# ---------------------------------------------------------------- SSA form and its inverse
def to_ssa(program: Program) -> Program:
    """Rename every reassignment to a fresh name `base_k`; behaviour is unchanged."""
    taken = set(program.params) | {s.target for s in program.statements} | set(POOL)
    current = {p: p for p in program.params}
    stmts = []
    for stmt in program.statements:
        args = tuple(current.get(a, a) if isinstance(a, str) else a for a in stmt.args)
        target = stmt.target
        if target in current:
            target = _fresh(_base(target), taken)
        current[stmt.target] = target
        stmts.append(Statement(target, stmt.op, args, stmt.line))
    returns = tuple(current[r] for r in program.returns)
    return Program(program.params, tuple(stmts), returns, program.name)


def from_ssa(program: Program) -> Program:
    """Give `base_k` its base name back wherever the previous holder of that name is done."""
    last_read = _last_reads(program)
    holder = {p: p for p in program.params}  # visible name -> SSA name it holds
    rename = {}
    stmts = []
    for i, stmt in enumerate(program.statements):
        args = tuple(rename.get(a, a) if isinstance(a, str) else a for a in stmt.args)
        base = _base(stmt.target)
        previous = holder.get(base)
        target = stmt.target
        if base != target and (previous is None or last_read.get(previous, -1) <= i):
            target = base
        rename[stmt.target] = target
        holder[target] = stmt.target
        stmts.append(Statement(target, stmt.op, args, stmt.line))
    returns = tuple(rename.get(r, r) for r in program.returns)
    return Program(program.params, tuple(stmts), returns, program.name)


def _last_reads(program: Program) -> dict:
    last = {}
    for i, stmt in enumerate(program.statements):
        for a in stmt.variables():
            last[a] = i
    for r in program.returns:
        last[r] = len(program.statements) + 1  # returned values live to the end
    return last


def _base(name: str) -> str:
    match = _SUFFIX.match(name)
    return match.group(1) if match and match.group(1) not in POOL else name


def _fresh(base: str, taken: set) -> str:
    k = 2
    while f"{base}_{k}" in taken:
        k += 1
    taken.add(f"{base}_{k}")
    return f"{base}_{k}"


def definers(program: Program) -> dict:
    """SSA name -> defining statement."""
    return {s.target: s for s in program.statements}


def bypass(program: Program, index: int, replacement) -> Program | None:
    """Drop statement `index` and read `replacement` (a name or constant) wherever it was used.

    None when a constant would have to be returned (returns must be names)."""
    target = program.statements[index].target
    if target in program.returns and not isinstance(replacement, str):
        return None

    def sub(a):
        return replacement if a == target and isinstance(a, str) else a

    stmts = [Statement(s.target, s.op, tuple(sub(a) for a in s.args), s.line)
             for i, s in enumerate(program.statements) if i != index]
    returns = tuple(sub(r) for r in program.returns)
    return Program(program.params, tuple(stmts), returns, program.name)


# ---------------------------------------------------------------- dead code
def dead_code(program: Program) -> Program | None:
    """Drop dead statements (cross-iteration liveness) and dead state slots from the signature."""
    keep = live_indices(program)
    slots = sorted(live_state_slots(program))
    params = (program.weight, program.grad, *(program.slots[s] for s in slots), program.lr)
    returns = (program.returns[0], *(program.returns[1 + s] for s in slots))
    stmts = tuple(s for i, s in enumerate(program.statements) if i in keep)
    result = Program(params, stmts, returns, program.name)
    return None if result == program else result


# ---------------------------------------------------------------- exact algebraic rules
def _rewrite(program: Program, rewrite_one) -> Program | None:
    """Apply `rewrite_one(stmt, defs) -> Statement | None` to every statement."""
    defs = definers(program)
    changed = False
    stmts = []
    for stmt in program.statements:
        new = rewrite_one(stmt, defs)
        if new is not None:
            new = Statement(stmt.target, new.op, new.args, stmt.line)
            defs[stmt.target] = new
            changed = True
        stmts.append(new or stmt)
    return program.replace_statements(stmts) if changed else None


def constant_folding(program: Program) -> Program | None:
    """Evaluate calls whose arguments are all constants (with the pool's exact semantics)."""
    values: dict = {}
    stmts = []
    for stmt in program.statements:
        args = tuple(values.get(a, a) if isinstance(a, str) else a for a in stmt.args)
        prim = POOL[stmt.op]
        if all(not isinstance(a, str) for a in args) and not prim.reduces:
            like = torch.zeros((), dtype=torch.float64)
            tensors = [torch.tensor(a, dtype=torch.float64) for a in args]
            value = float(prim.torch_fn(like) if prim.arity == 0 else prim.torch_fn(*tensors))
            if abs(value) < 1e300:  # an infinite constant is not a literal of the language
                values[stmt.target] = value
        stmts.append(Statement(stmt.target, stmt.op, args, stmt.line))
    folded = program.replace_statements(stmts)
    # Users of a folded value now read the constant; the folded statements become dead (a
    # returned one stays: returns must be names).
    return None if folded == program else folded


def _square_of(name, defs):
    stmt = defs.get(name)
    if stmt is None:
        return None
    if stmt.op == "square" or (stmt.op == "power" and stmt.args[1] == 2.0):
        return stmt.args[0] if isinstance(stmt.args[0], str) else None
    if stmt.op == "mul" and stmt.args[0] == stmt.args[1] and isinstance(stmt.args[0], str):
        return stmt.args[0]
    return None


def sqrt_square_to_abs(program: Program) -> Program | None:
    """sqrt(x * x), sqrt(square(x)), sqrt(power(x, 2)) -> abs(x)."""
    def one(stmt, defs):
        if stmt.op == "sqrt" and isinstance(stmt.args[0], str):
            x = _square_of(stmt.args[0], defs)
            if x is not None:
                return Statement(stmt.target, "abs", (x,))
        return None
    return _rewrite(program, one)


def _is_abs_of(name, x, defs) -> bool:
    stmt = defs.get(name) if isinstance(name, str) else None
    return stmt is not None and stmt.op == "abs" and stmt.args[0] == x


def sign_of_ratio(program: Program) -> Program | None:
    """x / abs(x) and abs(x) / x -> sign(x) (eps of the safe division taken as 0)."""
    def one(stmt, defs):
        if stmt.op != "div":
            return None
        a, b = stmt.args
        if isinstance(a, str) and _is_abs_of(b, a, defs):
            return Statement(stmt.target, "sign", (a,))
        if isinstance(b, str) and _is_abs_of(a, b, defs):
            return Statement(stmt.target, "sign", (b,))
        return None
    return _rewrite(program, one)


def interp_chain(program: Program) -> Program | None:
    """Merge nested EMAs with constant weights (identities checked by `interp_identities`):
    interp(x, interp(x, y, a), b) = interp(x, y, a * b) and
    interp(interp(x, y, a), y, b) = interp(x, y, 1 - (1 - a) * (1 - b))."""
    def one(stmt, defs):
        if stmt.op != "interp" or isinstance(stmt.args[2], str):
            return None
        x, y, b = stmt.args
        inner_y, inner_x = defs.get(y) if isinstance(y, str) else None, \
            defs.get(x) if isinstance(x, str) else None
        if _const_interp(inner_y) and inner_y.args[0] == x:
            return Statement(stmt.target, "interp", (x, inner_y.args[1], inner_y.args[2] * b))
        if _const_interp(inner_x) and inner_x.args[1] == y:
            a = inner_x.args[2]
            return Statement(stmt.target, "interp", (inner_x.args[0], y, 1 - (1 - a) * (1 - b)))
        return None
    return _rewrite(program, one)


def _const_interp(stmt) -> bool:
    return stmt is not None and stmt.op == "interp" and not isinstance(stmt.args[2], str)


def interp_identities() -> bool:
    """Check the two interp-chain identities in sympy (used by the tests)."""
    x, y, a, b = sympy.symbols("x y a b", real=True)
    f = POOL["interp"].sympy_fn
    first = sympy.expand(f(x, f(x, y, a), b) - f(x, y, a * b))
    second = sympy.expand(f(f(x, y, a), y, b) - f(x, y, 1 - (1 - a) * (1 - b)))
    return first == 0 and second == 0


# ---------------------------------------------------------------- state slots
def fold_state_slot(program: Program) -> Program | None:
    """Fold a slot s that always holds c times another slot t: read `s = t * c` instead.

    Both start at zero, so s = c t holds by induction if the new values satisfy it whenever
    the inputs do: S_s(s := c t) = c S_t(s := c t). c is read off the gradient coefficients."""
    try:
        sym = to_sympy(program)
    except (ValueError, TypeError):  # SymbolicError is a ValueError
        return None
    slots = sorted(sym.states)
    for s in slots:
        for t in slots:
            c = _proportional(sym, s, t) if s != t else None
            if c is not None:
                return _replace_slot(program, s, t, c)
    return None


def _proportional(sym, s: int, t: int):
    names = sym.params[2:-1]
    xs, xt, g = sym.symbols[names[s]], sym.symbols[names[t]], sym.symbols[sym.params[1]]
    ds, dt = sympy.diff(sym.states[s], g), sympy.diff(sym.states[t], g)
    if not (ds.is_number and dt.is_number) or dt == 0 or ds == 0:
        return None
    c = ds / dt
    lhs = sym.states[s].subs(xs, c * xt)
    rhs = c * sym.states[t].subs(xs, c * xt)
    return float(c) if sympy.expand(lhs - rhs) == 0 else None


def _replace_slot(program: Program, s: int, t: int, c: float) -> Program:
    name, other = program.slots[s], program.slots[t]
    params = tuple(p for p in program.params if p != name)
    returns = tuple(r for j, r in enumerate(program.returns) if j != 1 + s)
    first = Statement(name, "mul", (other, c))
    return Program(params, (first, *program.statements), returns, program.name)


# ---------------------------------------------------------------- approximate: ablation
def near_identity(program: Program) -> Program | None:
    """Bypass odd, near-identity calls applied to the raw gradient: f(g) -> g.

    NOT exact: arcsin/arctan/tanh/... are x + O(x^3) and clip(x, c) is x for |x| <= |c|, so
    this holds for small gradients only. It is the non-evaluating form of the paper's
    observation that Program 4's `clip(g, lr)` and `arcsin(g)` cost nothing when removed;
    with a measure the simplifier keeps it only when fitness stays within noise."""
    for i, stmt in enumerate(program.statements):
        if stmt.op in NEAR_IDENTITY and stmt.args[0] == program.grad and _wide_clip(program, stmt):
            return bypass(program, i, program.grad)  # one per call: chains unwind in turn
    return None


def _wide_clip(program: Program, stmt: Statement) -> bool:
    """clip(g, c) is bypassed only for c = the lr schedule value (peak 1) or |c| >= 1: a
    tighter clip changes typical gradients, which is for the measured ablation to judge."""
    if stmt.op != "clip":
        return True
    bound = stmt.args[1]
    return bound == program.lr if isinstance(bound, str) else abs(bound) >= 1.0

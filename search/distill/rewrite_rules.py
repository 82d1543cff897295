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

import functools
import re

import sympy
import torch

from optsearch.primitives.analysis import check
from optsearch.primitives.liveness import live_indices, live_state_slots
from optsearch.primitives.pool import POOL
from optsearch.primitives.program import Program, ProgramError, Statement
from optsearch.primitives.symbolic import from_sympy, leading_order_in_sign, to_sympy

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
    """Give `base_k` its base name back wherever the previous holder of that name is done.

    Statements are first put in an order where that is possible when dependencies allow (a
    rewrite can leave `v_2 = interp(g, v, b)` before `u = sign(v)`: emitted the other way
    round, `v = interp(g, v, b)` reads like the original); any topological order of an SSA
    program computes the same values."""
    program = _schedule(program)
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


def _schedule(program: Program) -> Program:
    """Topological order, original order where possible, writing a name's new version only
    after every reader of its previous version when some ready statement can go first."""
    stmts = program.statements
    targets = [s.target for s in stmts]
    if len(set(targets)) != len(targets) or set(targets) & set(program.params):
        return program  # not SSA: the order is the meaning
    readers: dict = {}
    for i, stmt in enumerate(stmts):
        for a in stmt.variables():
            readers.setdefault(a, set()).add(i)
    previous = [previous_holder(program, i) for i in range(len(stmts))]
    defined, done, order = set(program.params), set(), []
    while len(order) < len(stmts):
        ready = [i for i in range(len(stmts)) if i not in done
                 and all(a in defined for a in stmts[i].variables())]
        if not ready:  # not SSA or reads an undefined name: leave the order alone
            return program
        free = [i for i in ready if not (readers.get(previous[i], set()) - done - {i})]
        i = (free or ready)[0]
        order.append(i)
        done.add(i)
        defined.add(stmts[i].target)
    if order == list(range(len(stmts))):
        return program
    return program.replace_statements([stmts[i] for i in order])


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


def previous_holder(program: Program, index: int) -> str | None:
    """The SSA name that held statement `index`'s variable before it: what its readers would
    see if the statement were deleted from the original program (None: nothing did)."""
    base = _base(program.statements[index].target)
    for stmt in reversed(program.statements[:index]):
        if _base(stmt.target) == base:
            return stmt.target
    return base if base in program.params else None


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
    stmts, _ = _fold(program)
    folded = program.replace_statements(stmts)
    # Users of a folded value now read the constant; the folded statements become dead (a
    # returned one stays: returns must be names).
    return None if folded == program else folded


def _fold(program: Program) -> tuple[list, dict]:
    """(statements reading folded constants in place of names, name -> folded value)."""
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
    return stmts, values


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
    """sqrt(x * x), sqrt(square(x)), sqrt(power(x, 2)) -> abs(x); power(., 0.5) is a sqrt."""
    def one(stmt, defs):
        is_sqrt = stmt.op == "sqrt" or (stmt.op == "power" and stmt.args[1] == 0.5)
        if is_sqrt and isinstance(stmt.args[0], str):
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


# Value-range analysis for `sign_positive_factor`: which values are >= 0 or > 0 whatever the
# inputs, with the pool's semantics (sqrt and the logarithms act on |x|, power is |a| ** b,
# division is a / (b + eps), the lr schedule value is >= 0).
POSITIVE, NONNEGATIVE = 2, 1
_NONNEG_UNARY = ("abs", "sqrt", "square", "power", "log1p", "norm", "arccosh")
_POSITIVE_OPS = ("exp", "exp2", "cosh", "pi", "e", "eps")


def value_range(arg, defs: dict, lr: str, depth: int = 0) -> int:
    """POSITIVE (> 0), NONNEGATIVE (>= 0) or 0 (unknown) for a name or constant in SSA form."""
    if not isinstance(arg, str):
        return POSITIVE if arg > 0 else NONNEGATIVE if arg == 0 else 0
    if arg == lr:
        return NONNEGATIVE
    stmt = defs.get(arg)
    if stmt is None or depth > 64:
        return 0
    op = stmt.op
    if op in _POSITIVE_OPS:
        return POSITIVE
    r = [value_range(a, defs, lr, depth + 1) for a in stmt.args]
    if op in _NONNEG_UNARY:  # |x|-like: > 0 where the argument is
        return POSITIVE if r[0] == POSITIVE and op != "arccosh" else NONNEGATIVE
    if op == "reciprocal":  # 1 / (x + eps) with x >= 0
        return POSITIVE if r[0] else 0
    if op == "mul":
        return max(r[0], NONNEGATIVE) if stmt.args[0] == stmt.args[1] else min(r)
    if op == "div":  # a / (b + eps): the sign of a when b >= 0
        return r[0] if r[1] else 0
    if op == "add":  # both >= 0; > 0 if either is
        return max(r) if min(r) else 0
    if op in ("min", "mean"):
        return min(r)
    if op == "max":
        return max(r)
    if op == "clip":  # into [-|c|, |c|]: stays >= 0, may become 0
        return NONNEGATIVE if r[0] else 0
    if op == "interp" and not isinstance(stmt.args[2], str) and 0 <= stmt.args[2] <= 1:
        return min(r[:2])
    return 0


# Exact zeros for `zero_state_slot`. Functions with |f(x)| <= 1 for every finite x, and the
# operations that keep |x| <= 1.
_UNIT_RANGE_OPS = ("sin", "cos", "tanh", "sign")
_UNIT_CLOSED_OPS = ("abs", "neg", "negative", "square", "cube", "mul", "min", "max")


@functools.cache
def _keeps_zero(op: str) -> bool:
    """f(0) = 0 for an element-wise unary pool function (read off its own implementation)."""
    prim = POOL[op]
    if prim.arity != 1 or prim.result != "elementwise":
        return False
    return float(prim.torch_fn(torch.zeros((), dtype=torch.float64))) == 0.0


def exact_zeros(program: Program) -> frozenset:
    """Names whose value is exactly 0 whatever the finite inputs, with the pool's semantics:
    constants that fold to 0; arccosh(x) = arccosh(max(|x|, 1)) = arccosh(1) = 0 wherever
    |x| <= 1 (so arccosh(sin(m)) is 0); f(0) = 0 for the functions `_keeps_zero` finds;
    0 + 0, 0 - 0; and 0 * y for |y| <= 1 (an infinite y would give NaN). One pass in program
    order (SSA form), tracking the names known to lie in [-1, 1] beside."""
    stmts, values = _fold(program)
    zero = {n for n, v in values.items() if v == 0.0}
    unit = {n for n, v in values.items() if abs(v) <= 1.0}

    def is_zero(a):
        return a in zero if isinstance(a, str) else a == 0.0

    def is_unit(a):
        return a in unit if isinstance(a, str) else abs(a) <= 1.0

    for stmt in stmts:
        op, args, target = stmt.op, stmt.args, stmt.target
        if target in values:
            continue
        zero.discard(target)
        unit.discard(target)
        if ((op == "arccosh" and is_unit(args[0])) or (_keeps_zero(op) and is_zero(args[0]))
                or (op in ("add", "sub") and all(map(is_zero, args)))
                or (op == "mul" and any(is_zero(a) and is_unit(b)
                                        for a, b in (args, args[::-1])))):
            zero.add(target)
        if (target in zero or op in _UNIT_RANGE_OPS
                or (op == "clip" and any(map(is_unit, args)))  # |clip(x, c)| <= min(|x|, |c|)
                or (op in _UNIT_CLOSED_OPS and all(map(is_unit, args)))):
            unit.add(target)
    return frozenset(zero)


def sign_positive_factor(program: Program) -> Program | None:
    """sign(a / b) -> sign(a) for b >= 0, sign(a * p) -> sign(a) for p > 0.

    Exact with the pool's safe division: a / (b + eps) with b >= 0 divides by a positive
    number. This is what makes Adam's sqrt(v) irrelevant inside a sign, e.g.
    sign(m / sqrt(v)) = sign(m) (and v then dies)."""
    def one(stmt, defs):
        if stmt.op != "sign" or not isinstance(stmt.args[0], str):
            return None
        inner = defs.get(stmt.args[0])
        if inner is None:
            return None
        a, b = (inner.args + (None,))[:2]
        if inner.op == "div" and value_range(b, defs, program.lr):
            return Statement(stmt.target, "sign", (a,))
        if inner.op == "mul":
            if value_range(b, defs, program.lr) == POSITIVE:
                return Statement(stmt.target, "sign", (a,))
            if value_range(a, defs, program.lr) == POSITIVE:
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


def gradient_difference_momentum(program: Program) -> Program | None:
    """Lion written with the previous gradient: a slot v that keeps g (v_new = g), and

        d = interp(g, v, t); M = interp(d, M, b); ... sign(M) ...

    i.e. M_t = b M_{t-1} + (1 - b)(1 - t) g_t + (1 - b) t g_{t-1}. Lion's direction
    L_t = beta1 m_{t-1} + (1 - beta1) g_t, with m an EMA of decay b, obeys
    L_t = b L_{t-1} + (1 - beta1) g_t - (b - beta1) g_{t-1}, and both start from 0; with
    beta1 = b (1 - t) + t the coefficients agree ((1 - b)(1 - t) = 1 - beta1), so M_t = L_t
    and the program is, exactly,

        d = interp(g, M, beta1); M = interp(g, M, b); ... d ...

    (a search found Lion as `interp(g, v, -9)` then `interp(., m, 0.99)`: beta1 0.9). Under
    a sign that is Lion; read otherwise it is a momentum method with a look-ahead, and the
    templates tell which. The caller's numerical equivalence check still decides. SSA form
    in and out."""
    grad, defs = program.grad, definers(program)
    for s, v in enumerate(program.slots):
        if program.returns[1 + s] != grad:
            continue
        for j, outer in enumerate(program.statements):
            d = outer.args[0] if outer.op == "interp" else None
            inner = defs.get(d) if isinstance(d, str) else None
            if not (_const_interp(outer) and outer.args[1] in program.slots and
                    _const_interp(inner) and inner.args[:2] == (grad, v)):
                continue
            decay, t, m = outer.args[2], inner.args[2], outer.args[1]
            beta1 = decay * (1 - t) + t
            i = program.statements.index(inner)
            stmts = list(program.statements)
            stmts[i] = Statement(inner.target, "interp", (grad, m, beta1))
            stmts[j] = Statement(outer.target, "interp", (grad, m, decay))
            reads = {outer.target: inner.target}  # later readers see the direction
            stmts[j + 1:] = [Statement(x.target, x.op, tuple(reads.get(a, a) for a in x.args))
                             for x in stmts[j + 1:]]
            return program.replace_statements(stmts)
    return None


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


def zero_state_slot(program: Program) -> Program | None:
    """A slot that holds 0 on every step is read as the constant 0.

    Every slot starts at 0 (the interpreter, the proxy tasks, the imitation stream and the
    exported optimizer all zero-initialise), and a program is straight-line: its new value is
    one expression of the step's inputs. If that expression is exactly 0 whenever the slot
    read 0 -- the slot is never written (returned as read), or written with a value that is 0
    whatever the inputs, e.g. arccosh(sin(m)) -- then by induction the slot holds 0 for ever.
    Exact for finite values. The slot leaves the signature; constant folding takes the 0 on
    (max(arcsin(v), v) -> 0, and m / v -> m / 0, which the pool divides by eps). SSA form in
    and out (a read of the slot's parameter is a read of the old value)."""
    for s, slot in enumerate(program.slots):
        if not any(slot in stmt.variables() for stmt in program.statements):
            continue
        stmts = [Statement(st.target, st.op, tuple(0.0 if a == slot else a for a in st.args),
                           st.line) for st in program.statements]
        zeroed = program.replace_statements(stmts)
        new_value = program.returns[1 + s]
        if new_value == slot or new_value in exact_zeros(zeroed):
            zeroed = dead_code(zeroed) or zeroed  # the slot leaves the signature
            if valid(zeroed):  # not where a reduction needs a tensor
                return zeroed
    return None


def valid(program: Program) -> bool:
    """The program passes the language's checks (a rewrite may leave a reduction a scalar)."""
    try:
        check(program)
    except ProgramError:
        return False
    return True


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


def saturated_clip(program: Program) -> Program | None:
    """clip(x, b) -> |b| * sign(x), for x other than the raw gradient and b a constant or a
    value known to be >= 0 (the lr schedule and its positive multiples).

    NOT exact: equal where |x| >= |b|, so it holds when the clip saturates -- a bound far below
    the typical |x|, as in a search's `update = clip(m + 0.1 * g, lr * 1e-4)`, which is Lion
    in disguise. Only applied with a measure, which keeps it when fitness stays within noise.
    One clip per call (SSA form in, SSA form out)."""
    defs = definers(program)
    taken = set(program.params) | set(defs) | set(POOL)
    for i, stmt in enumerate(program.statements):
        if stmt.op != "clip" or stmt.args[0] == program.grad:
            continue
        x, bound = stmt.args
        if isinstance(bound, str) and value_range(bound, defs, program.lr) < NONNEGATIVE:
            continue
        scale = abs(bound) if not isinstance(bound, str) else bound
        signed = _fresh(_base(stmt.target), taken)
        stmts = list(program.statements)
        stmts[i:i + 1] = [Statement(signed, "sign", (x,)),
                          Statement(stmt.target, "mul", (signed, scale))]
        return program.replace_statements(stmts)
    return None


# Pool functions with finite limits at +-infinity (their clamps included): f(k x) for a large
# gain k is a two-valued function of sign(x). SATURATION_GAIN only filters the candidates
# worth a measure call; the measure decides.
SATURATING = ("arcsin", "arccos", "arctan", "tanh", "arctanh")
SATURATION_GAIN = 1e4


def saturation_limits(op: str) -> tuple[float, float]:
    """(f(+inf), f(-inf)) of a saturating pool function, from its own implementation."""
    big = torch.tensor([1e300, -1e300], dtype=torch.float64)
    high, low = POOL[op].torch_fn(big).tolist()
    return high, low


def _gain(name, defs) -> float | None:
    """k where `name` is k * x for a constant k: x * k, k * x, or x / c with the pool's safe
    division (k = 1 / (c + eps); a zero denominator gives k = 1 / eps = 1e8)."""
    stmt = defs.get(name) if isinstance(name, str) else None
    if stmt is None or not any(isinstance(a, str) for a in stmt.args):
        return None
    a, b = stmt.args[:2] if len(stmt.args) == 2 else (None, None)
    if stmt.op == "mul":
        k = b if isinstance(a, str) else a
        return None if isinstance(k, str) else float(k)
    if stmt.op == "div" and isinstance(a, str) and not isinstance(b, str):
        one = torch.ones((), dtype=torch.float64)
        return float(POOL["div"].torch_fn(one, torch.tensor(b, dtype=torch.float64)))
    return None


def saturated_gain(program: Program) -> Program | None:
    """f(k x) -> c + h sign(k x) for f in SATURATING and |k| >= SATURATION_GAIN, where
    c + h and c - h are f(+inf) and f(-inf): arcsin(m / 0) -> (pi/2) sign(m / 0), which the
    exact rules read as (pi/2) sign(m).

    NOT exact: arcsin, arccos and arctanh clamp their argument, so they equal the reading
    where |k x| >= 1 (arctanh: 1 - 1e-7); arctan and tanh approach it, within 1 / |k x|.
    Elements with |x| < 1 / |k| differ. A search's `arcsin(m / v)`, v a slot that stays 0,
    is Signum so: the pool's m / 0 is m / eps = 1e8 m. Only applied with a measure, which
    keeps it when fitness stays within noise. One call per rewrite (SSA form in and out)."""
    defs = definers(program)
    taken = set(program.params) | set(defs) | set(POOL)
    for i, stmt in enumerate(program.statements):
        gain = _gain(stmt.args[0], defs) if stmt.op in SATURATING else None
        if gain is None or not abs(gain) >= SATURATION_GAIN:
            continue
        high, low = saturation_limits(stmt.op)
        centre, half = (high + low) / 2, (high - low) / 2
        signed = _fresh(_base(stmt.target), taken)
        new = [Statement(signed, "sign", (stmt.args[0],))]
        if centre == 0.0:
            new.append(Statement(stmt.target, "mul", (signed, half)))
        else:  # arccos: pi/2 - (pi/2) sign(y)
            scaled = _fresh(_base(stmt.target), taken)
            new += [Statement(scaled, "mul", (signed, half)),
                    Statement(stmt.target, "add", (scaled, centre))]
        stmts = list(program.statements)
        stmts[i:i + 1] = new
        return program.replace_statements(stmts)
    return None


def higher_order_terms(program: Program) -> Program | None:
    """Inside a sign, drop the terms of degree >= 2 in the signals (g, w and the state):
    sign(0.99 m + 0.11 g + 0.01 g (m - g)) -> sign(0.99 m + 0.11 g).

    NOT exact (symbolic.leading_order_in_sign): it holds where the signals are small. A
    search wrote Lion so, `interp(m_new, m + 0.1, g)`: an interp whose weight is the
    gradient adds g times a difference of momenta to Lion's direction. Only applied with a
    measure, which keeps it when fitness stays within noise. SSA form in and out."""
    try:
        sym = to_sympy(program)
        signals = [sym.symbols[p] for p in sym.params[:-1]]
        update = leading_order_in_sign(sym.update, signals)
        if update == sym.update:
            return None
        after = from_sympy(program.params, update, sym.states, program.name)
    except (ValueError, TypeError):  # SymbolicError is a ValueError
        return None
    return to_ssa(after)


def _wide_clip(program: Program, stmt: Statement) -> bool:
    """clip(g, c) is bypassed only for c = the lr schedule value (peak 1) or |c| >= 1: a
    tighter clip changes typical gradients, which is for the measured ablation to judge."""
    if stmt.op != "clip":
        return True
    bound = stmt.args[1]
    return bound == program.lr if isinstance(bound, str) else abs(bound) >= 1.0

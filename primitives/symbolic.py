"""Program <-> sympy bridge, driven by the pool table's `sympy_fn`.

Forward: the live program becomes one sympy expression for the update and one per live state
slot, as functions of the symbols w, g, lr and the slot inputs (named as the parameters).
Reductions (`sympy_fn` None) stay opaque function symbols such as `norm(x)`. The exporter's
docstring equations come from the same conversion (`live_expressions`), with its own symbols
(hyperparameter names, plain symbols) and constants rounded for display.

Algebra conventions (the pool's sympy forms): the eps guard of division is taken as 0, so
`x / sqrt(x * x)` is `x / |x| = sign(x)` in the algebra although the interpreter computes
`x / (|x| + 1e-8)`; `sqrt` and the logarithms act on |x|. w, g and the slots are real symbols,
the learning-rate schedule value is non-negative.

Backward: expressions -> statements with common-subexpression elimination (`sympy.cse`), so
a simplified expression becomes a valid Program again.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from optsearch.primitives.dataflow import definitions
from optsearch.primitives.liveness import live_indices, live_state_slots
from optsearch.primitives.pool import POOL
from optsearch.primitives.program import Program, Statement

INTERP_TOL = 1e-12  # coefficients summing to 1 within this are printed as interp(...)


class SymbolicError(ValueError):
    """The expression has no counterpart in the language (complex, infinite, unknown)."""


@dataclass(frozen=True)
class SymbolicProgram:
    params: tuple[str, ...]
    symbols: dict  # parameter name -> sympy Symbol
    update: sympy.Expr
    states: dict  # live slot index -> expression of the slot's new value


def opaque(name: str):
    """The opaque real-valued function symbol standing for a reduction such as norm."""
    return sympy.Function(name, real=True)


def make_symbols(params) -> dict:
    lr = params[-1]
    return {p: sympy.Symbol(p, nonnegative=True) if p == lr else sympy.Symbol(p, real=True)
            for p in params}


def constant(value: float) -> sympy.Expr:
    # Integral constants become Integers so that x * 1.0 folds to x and x ** 2.0 is a square.
    if float(value).is_integer() and abs(value) < 1e15:
        return sympy.Integer(int(value))
    return sympy.Float(value)


def algebra_literal(statement: int, position: int, value: float) -> sympy.Expr:
    return constant(value)


def live_expressions(program: Program, symbols: dict, literal=algebra_literal, function=opaque):
    """The one program -> sympy conversion: the expression of every live value of one call,
    keyed by dataflow node (`("in", k)`, `("stmt", i)`), and the return nodes.

    `symbols` maps each parameter name to its expression; `literal(i, pos, value)` gives the
    constant at argument `pos` of statement `i` (default: `constant(value)`); `function(name)`
    the function symbol standing for a reduction (whose pool `sympy_fn` is None).
    """
    live = live_indices(program)
    env = {("in", k): symbols[name] for k, name in enumerate(program.params)}
    for node, reads in definitions(program):
        if node == "returns":
            return env, reads
        if node[1] not in live:
            continue
        stmt = program.statements[node[1]]
        prim = POOL[stmt.op]
        args = [env[r] if r else literal(node[1], pos, a)
                for pos, (r, a) in enumerate(zip(reads, stmt.args))]
        env[node] = function(stmt.op)(*args) if prim.sympy_fn is None else prim.sympy_fn(*args)


def to_sympy(program: Program) -> SymbolicProgram:
    """Expressions of the live program's update and live state slots."""
    symbols = make_symbols(program.params)
    env, returns = live_expressions(program, symbols)
    states = {s: env[returns[1 + s]] for s in sorted(live_state_slots(program))}
    return SymbolicProgram(program.params, symbols, env[returns[0]], states)


def ratio_to_sign(expr: sympy.Expr) -> sympy.Expr:
    """k * x / |x| and |x| / (k * x) -> k * sign(x) and sign(x) / k: exact once the eps of
    the safe division is taken as 0. The numerator may be any constant multiple of the
    argument of |.| (sympy distributes 0.05 * (0.1 * g + 0.9 * m) into the sum)."""
    def is_ratio(e) -> bool:
        return e.is_Mul and _ratio_pair(e) is not None

    def to_sign(e):
        num, den, x, k = _ratio_pair(e)
        rest = list(e.args)
        rest.remove(num)
        rest.remove(den)
        return sympy.Mul(*rest) * k * sympy.sign(x)
    return expr.replace(is_ratio, to_sign)


def _ratio_pair(mul):
    """(numerator factor, denominator factor, x, k) with the pair equal to k * sign(x)."""
    for den in mul.args:
        if not (den.is_Pow and den.exp == -1):
            continue
        base = den.base
        for num in mul.args:
            if num is den:
                continue
            if isinstance(base, sympy.Abs):  # k * x / |x|
                k = _proportional(num, base.args[0])
                if k is not None:
                    return num, den, base.args[0], k
            elif isinstance(num, sympy.Abs):  # |x| / (k * x)
                k = _proportional(base, num.args[0])
                if k is not None and k != 0:
                    return num, den, num.args[0], 1 / k
    return None


def _proportional(a, b):
    """The number k with a = k * b, else None (term by term, to a relative 1e-12)."""
    if a == b:
        return sympy.Integer(1)
    da, db = sympy.expand(a).as_coefficients_dict(), sympy.expand(b).as_coefficients_dict()
    if set(da) != set(db) or not db:
        return None
    ratios = [da[t] / db[t] for t in db]
    k = ratios[0]
    if not k.is_number or k == 0:
        return None
    return k if all(abs(float(r - k)) <= 1e-12 * abs(float(k)) for r in ratios) else None


def drop_positive_in_sign(expr: sympy.Expr) -> sympy.Expr:
    """sign(a * p) -> sign(a) for factors p known > 0, and for 1 / b with b >= 0: the pool's
    safe division a / (b + eps) divides by a positive number (so sign(m / sqrt(v)) is
    sign(m)). A factor known < 0 flips the sign. A factor |y| ** k (k > 0) next to sign(y)
    goes too: it vanishes exactly where sign(y) does (cbrt(y) = sign(y) * |y| ** (1/3))."""
    def is_target(e) -> bool:
        return isinstance(e, sympy.sign) and e.args[0].is_Mul

    def strip(e):
        factors = e.args[0].args
        keep, flip = [], 1
        for f in factors:
            if f.is_positive or _positive_divisor(f) or _magnitude_of_a_sign(f, factors):
                continue
            if f.is_negative:
                flip = -flip
                continue
            keep.append(f)
        return flip * sympy.sign(sympy.Mul(*keep))
    return expr.replace(is_target, strip)


def leading_order_in_sign(expr: sympy.Expr, signals) -> sympy.Expr:
    """sign(a + b) -> sign(a), where a is the part of the argument of degree <= 1 in
    `signals` (the gradient, the weights, the state) and b the part of degree >= 2.

    NOT exact: for small signals the linear part decides the sign wherever it is not itself
    small (0.99 m + 0.11 g + 0.01 g (m - g) has the sign of 0.99 m + 0.11 g while |g|, |m| << 1),
    and a sign reads no magnitude. Applied only where the argument is a polynomial in the
    signals with both parts present; a measure judges the result."""
    def leading(e):
        arg = sympy.expand(e.args[0])
        try:
            poly = sympy.Poly(arg, *signals)
        except sympy.PolynomialError:
            return e
        low = [c * sympy.Mul(*(x ** k for x, k in zip(signals, m)))
               for m, c in poly.terms() if sum(m) <= 1]
        if len(low) == len(poly.terms()) or not any(sum(m) == 1 for m, _ in poly.terms()):
            return e
        return sympy.sign(sympy.Add(*low))
    return expr.replace(lambda e: isinstance(e, sympy.sign), leading)


def _positive_divisor(f) -> bool:
    return bool(f.is_Pow and f.exp.is_negative and f.base.is_nonnegative)


def _magnitude_of_a_sign(f, factors) -> bool:
    base = f.base if f.is_Pow and f.exp.is_positive else f
    return isinstance(base, sympy.Abs) and sympy.sign(base.args[0]) in factors


# Odd, strictly increasing on the pool's (clamped) domain: sign(f(y)) = sign(y). tan is odd
# but not monotone, so it is not here; cube and cbrt are handled as powers and |y| ** k.
ODD_INCREASING = (sympy.atanh, sympy.asinh, sympy.tanh, sympy.sinh, sympy.atan, sympy.asin)


def _odd_argument(arg):
    """y when arg = f(y) has the sign of y (f odd increasing, y ** odd, expm1), else None."""
    if isinstance(arg, ODD_INCREASING):
        return arg.args[0]
    if arg.is_Pow and arg.exp.is_integer and arg.exp.is_odd and arg.exp.is_positive:
        return arg.base
    if arg.is_Add and len(arg.args) == 2 and sympy.Integer(-1) in arg.args:  # expm1(y)
        (rest,) = [a for a in arg.args if a != -1]
        if isinstance(rest, sympy.exp):
            return rest.args[0]
    return None


def odd_inside_sign(expr: sympy.Expr) -> sympy.Expr:
    """sign(f(y)) -> sign(y) for f odd and increasing (arctanh, arcsinh, tanh, sinh, arctan,
    arcsin, y ** 3, expm1): exact, also with the pool's clamped domains."""
    def is_target(e) -> bool:
        return isinstance(e, sympy.sign) and _odd_argument(e.args[0]) is not None
    return expr.replace(is_target, lambda e: sympy.sign(_odd_argument(e.args[0])))


def real_even_powers(expr: sympy.Expr) -> sympy.Expr:
    """|y ** 2k| -> y ** 2k, |y| ** 2k -> y ** 2k and (y ** 2k) ** r -> |y| ** 2kr.

    Every value of a program is real (the pool clamps arctanh's argument into its domain),
    which sympy cannot know of atanh(g): without this, sqrt(square(arctanh(g))) would not
    become |arctanh(g)|, and arctanh(g) / that would not become a sign."""
    def even_power(e) -> bool:
        return bool(e.is_Pow and e.exp.is_integer and e.exp.is_even and e.exp.is_positive)

    expr = expr.replace(lambda e: isinstance(e, sympy.Abs) and even_power(e.args[0]),
                        lambda e: e.args[0])
    expr = expr.replace(lambda e: even_power(e) and isinstance(e.base, sympy.Abs),
                        lambda e: e.base.args[0] ** e.exp)
    # (y ** 2k) ** r = |y| ** 2kr for real y (the -1/2 of a division by sqrt(y ** 2) too)
    return expr.replace(lambda e: e.is_Pow and not e.exp.is_integer and even_power(e.base),
                        lambda e: sympy.Abs(e.base.base) ** (e.base.exp * e.exp))


MAX_NORMAL_PASSES = 6
SNAP_TOL = 1e-12


def _as_float(e):
    value = e.evalf()
    return value if value.is_Float else e


def snap_integers(expr: sympy.Expr) -> sympy.Expr:
    """Constant subexpressions become Floats (sqrt(2) * 0.7071067811865476 then folds), and
    Floats within a relative 1e-12 of an integer become it: 0.0546875 * 18.285714285714285
    is 1 written with rounding error, and `x * 1.0000000000000002` is no statement to keep."""
    expr = expr.replace(lambda e: e.is_number and not e.is_Atom, _as_float)
    snap = {}
    for f in expr.atoms(sympy.Float):
        n = round(float(f))
        if abs(float(f) - n) <= SNAP_TOL * max(1.0, abs(n)):
            snap[f] = sympy.Integer(n)
    return expr.xreplace(snap) if snap else expr


def normalise_signs(expr: sympy.Expr) -> sympy.Expr:
    """The sign forms the algebra can decide, to a fixed point: real even powers, ratios to
    signs, odd increasing functions out of a sign, positive factors out of a sign. Together
    they reach sign(x) from c * x / |x|, x / sqrt(c * x ** 2), sign(arctanh(x)), cbrt(x) / |.|
    and their compositions."""
    for _ in range(MAX_NORMAL_PASSES):
        new = drop_positive_in_sign(odd_inside_sign(ratio_to_sign(real_even_powers(expr))))
        new = snap_integers(new)
        if new == expr:
            break
        expr = new
    return expr


def is_finite_real(expr: sympy.Expr) -> bool:
    bad = (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan, sympy.I)
    return not any(expr.has(b) for b in bad)


def from_sympy(params, update: sympy.Expr, states: dict, name: str = "train") -> Program:
    """A Program computing `update` and the new value of every slot (dead slots keep theirs).

    `states` maps slot index -> expression; a slot without an entry returns its input.
    """
    slots = params[2:-1]
    outputs = [update] + [states.get(i, sympy.Symbol(s, real=True)) for i, s in enumerate(slots)]
    for expr in outputs:
        if not is_finite_real(expr):
            raise SymbolicError(f"expression has no real finite value: {expr}")
    temps = sympy.numbered_symbols("t", real=True)
    replacements, reduced = sympy.cse(outputs, symbols=temps, order="none")
    emitter = _Emitter(set(params))
    for sym, expr in replacements:
        emitter.bind(sym, expr)
    returns = [emitter.output(expr) for expr in reduced]
    program = Program(tuple(params), tuple(emitter.statements), tuple(returns), name)
    return rename_outputs(program)


class _Emitter:
    """Turns sympy expressions into statements, one pool call per node."""

    def __init__(self, params: set):
        self.statements: list[Statement] = []
        self.names: dict = {}  # sympy node -> variable name already holding it
        self.taken = set(params) | set(POOL)
        self.counter = 0

    def fresh(self) -> str:
        while True:
            self.counter += 1
            name = f"t{self.counter}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def emit(self, op: str, *args) -> str:
        key = (op, args)
        if key in self.names:
            return self.names[key]
        target = self.fresh()
        self.statements.append(Statement(target, op, tuple(args)))
        self.names[key] = target
        return target

    def bind(self, sym, expr) -> None:
        self.names[sym] = self.arg(expr, force_var=True)

    def output(self, expr) -> str:
        return self.arg(expr, force_var=True)

    def arg(self, expr, force_var: bool = False):
        if expr in self.names:
            return self.names[expr]
        if expr.is_Symbol:
            return expr.name
        if expr.is_number:
            value = float(expr)
            # A bare constant cannot be returned or bound: materialise it as a statement.
            return self.emit("add", value, 0.0) if force_var else value
        name = _node(self, expr)
        self.names[expr] = name
        return name


def _node(em: _Emitter, expr) -> str:
    if expr.is_Add:
        return _add(em, expr)
    if expr.is_Mul:
        return _mul(em, expr)
    if expr.is_Pow:
        return _pow(em, expr)
    return _function(em, expr)


def _add(em: _Emitter, expr) -> str:
    terms = [t.as_coeff_Mul() for t in expr.args]
    if len(terms) == 2 and all(not rest.is_number for _, rest in terms):
        (c1, x1), (c2, x2) = sorted(terms, key=lambda t: float(t[0]))
        if abs(float(c1 + c2) - 1.0) < INTERP_TOL:  # (1 - b) * x + b * y = interp(x, y, b)
            return em.emit("interp", em.arg(x1), em.arg(x2), float(c2))
    positive = [t for t in expr.args if not t.could_extract_minus_sign()]
    negative = [-t for t in expr.args if t.could_extract_minus_sign()]
    if not positive:
        return em.emit("neg", em.arg(sympy.Add(*negative)))
    acc = em.arg(positive[0])
    for term in positive[1:]:
        acc = em.emit("add", acc, em.arg(term))
    for term in negative:
        acc = em.emit("sub", acc, em.arg(term))
    return acc


def _mul(em: _Emitter, expr) -> str:
    coeff, rest = expr.as_coeff_Mul()
    if coeff == -1:
        return em.emit("neg", em.arg(rest))
    num, den = sympy.fraction(expr)
    if den != 1:
        return em.emit("div", em.arg(num), em.arg(den))
    factors = [f for f in rest.args] if rest.is_Mul else [rest]
    acc = em.arg(factors[0])
    for factor in factors[1:]:
        acc = em.emit("mul", acc, em.arg(factor))
    return acc if coeff == 1 else em.emit("mul", acc, float(coeff))


def _pow(em: _Emitter, expr) -> str:
    base, exp = expr.args
    if exp.is_number and exp < 0:
        return em.emit("reciprocal", em.arg(base ** -exp))
    if base == sympy.E:
        return em.emit("exp", em.arg(exp))
    if base == 2:
        return em.emit("exp2", em.arg(exp))
    if exp == 2:
        return em.emit("square", em.arg(base))
    if exp == 3:
        return em.emit("cube", em.arg(base))
    inner = base.args[0] if isinstance(base, sympy.Abs) else base
    if exp == sympy.Rational(1, 2):
        return em.emit("sqrt", em.arg(inner))  # sqrt acts on |x|: exact for |x| or x >= 0
    return em.emit("power", em.arg(inner), em.arg(exp))  # power is |a| ** b


_UNARY = {}  # (sympy function class, argument wrapped in Abs) -> pool name


def _unary_table() -> dict:
    if not _UNARY:
        x = sympy.Symbol("x", real=True)
        for prim in POOL.values():
            if prim.arity != 1 or prim.sympy_fn is None or prim.infix:
                continue
            form = prim.sympy_fn(x)
            if isinstance(form, sympy.Function) and len(form.args) == 1:
                arg = form.args[0]
                if arg == x or arg == sympy.Abs(x):
                    _UNARY.setdefault((form.func, arg != x), prim.name)
    return _UNARY


def _function(em: _Emitter, expr) -> str:
    if isinstance(expr, (sympy.Max, sympy.Min)):
        return _extremum(em, expr)
    if expr.func.__name__ in POOL and POOL[expr.func.__name__].sympy_fn is None:
        return em.emit(expr.func.__name__, *(em.arg(a) for a in expr.args))
    if len(expr.args) == 1:
        (arg,) = expr.args
        table = _unary_table()
        if isinstance(arg, sympy.Abs) and (expr.func, True) in table:
            return em.emit(table[(expr.func, True)], em.arg(arg.args[0]))
        if (expr.func, False) in table:
            return em.emit(table[(expr.func, False)], em.arg(arg))
        if expr.func == sympy.log:  # log of a value known positive: the pool's log(|x|)
            return em.emit("log", em.arg(arg))
    raise SymbolicError(f"no pool function for {expr.func}")


def _extremum(em: _Emitter, expr) -> str:
    args = list(expr.args)
    if isinstance(expr, sympy.Max) and len(args) == 2:  # Max(-c, Min(x, c)) is clip(x, c)
        for low, high in (args, args[::-1]):
            if isinstance(high, sympy.Min) and len(high.args) == 2:
                for x, c in (high.args, high.args[::-1]):
                    if low == -c and c.is_nonnegative:
                        bound = c.args[0] if isinstance(c, sympy.Abs) else c
                        return em.emit("clip", em.arg(x), em.arg(bound))
    op = "max" if isinstance(expr, sympy.Max) else "min"
    acc = em.arg(args[0])
    for a in args[1:]:
        acc = em.emit(op, acc, em.arg(a))
    return acc


def rename_outputs(program: Program) -> Program:
    """Give each output's defining statement a readable name: update, or the slot's name."""
    wanted = ["update"] + list(program.slots)
    defining = {s.target: i for i, s in enumerate(program.statements)}
    rename = {}
    for j, name in enumerate(program.returns):
        new = wanted[j]
        if name not in defining or name in rename or new in rename.values():
            continue
        if new in program.params and not _slot_free_after(program, new, defining[name]):
            continue
        if new not in program.params and any(s.target == new for s in program.statements):
            continue
        rename[name] = new
    return _apply_rename(program, rename)


def _slot_free_after(program: Program, slot: str, index: int) -> bool:
    # Overwriting the slot's input at `index` is safe if nothing after it reads the input.
    return all(slot not in s.variables() for s in program.statements[index + 1:])


def _apply_rename(program: Program, rename: dict) -> Program:
    def sub(a):
        return rename.get(a, a) if isinstance(a, str) else a

    stmts = [Statement(rename.get(s.target, s.target), s.op, tuple(sub(a) for a in s.args))
             for s in program.statements]
    return Program(program.params, tuple(stmts), tuple(sub(r) for r in program.returns),
                   program.name)

"""The function pool: one table drives the parser, kind inference, codegen, sympy, mutation and docs.

Semantics are chosen so that every primitive is total on finite inputs (no exceptions, no NaN
from a domain error): `sqrt` and the logarithms act on |x| as in the paper's pool, inverse
trigonometric functions clamp their argument into the domain, and division is eps-guarded.
Overflow to +-inf is allowed; the proxy tasks catch it as divergence.

Each torch implementation takes tensors (0-d or shaped) and, for reductions, `bd`: the number
of leading batch dimensions (stacked seeds) that a reduction must not reduce over.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import sympy
import torch

EPS = 1e-8  # the value of eps(), and the guard of safe division and log

TENSOR, SCALAR, ANY = "tensor", "scalar", "any"


@dataclass(frozen=True)
class Primitive:
    name: str
    arity: int
    arg_kinds: tuple[str, ...]  # TENSOR, SCALAR or ANY per argument
    result: str  # "elementwise" (tensor if any argument is), TENSOR or SCALAR
    torch_fn: Callable
    sympy_fn: Callable | None  # exact algebra; eps guards are ignored (see docs/primitives.md)
    cost: float  # relative cost of one call (elementwise unary = 1)
    doc: str
    infix: str | None = None  # "+", "-", "*", "/" for the binary operators, "-" for neg
    commutative: bool = False
    reduces: bool = False  # takes the `bd` keyword (reductions over non-batch dims)


def _dims(x: torch.Tensor, bd: int) -> tuple[int, ...]:
    return tuple(range(bd, x.dim()))


def safe_div(a, b):
    """a / (b + eps): eps-guarded (not sign-aware) -- the same guard Adam uses."""
    return a / (b + EPS)


def _norm(x, bd):
    dims = _dims(x, bd)
    return torch.linalg.vector_norm(x, dim=dims, keepdim=True) if dims else x.abs()


def _mean(x, bd):
    dims = _dims(x, bd)
    return x.mean(dim=dims, keepdim=True) if dims else x


def _dot(x, y, bd):
    prod = x * y
    dims = _dims(prod, bd)
    return prod.sum(dim=dims, keepdim=True) if dims else prod


def _cosine_sim(x, y, bd):
    return safe_div(_dot(x, y, bd), _norm(x, bd) * _norm(y, bd))


def _clip_by_norm(x, c, bd):
    # Scale x down so its L2 norm is at most |c|; never scale up.
    norm = _norm(x, bd)
    return x * torch.clamp(safe_div(c.abs(), norm), max=1.0)


def _clip(x, c):
    c = c.abs()
    return torch.minimum(torch.maximum(x, -c), c)


def _cbrt(x):
    return torch.sign(x) * x.abs().pow(1.0 / 3.0)


def _unit(x):  # clamp into [-1, 1] for arcsin / arccos / arctanh
    return x.clamp(-1.0, 1.0)


def _const(value):
    def make(like: torch.Tensor) -> torch.Tensor:
        return torch.full((), value, dtype=like.dtype, device=like.device)

    return make


def _s_abs_sqrt(x):
    return sympy.sqrt(sympy.Abs(x))


def _s_log(base):
    return lambda x: sympy.log(sympy.Abs(x), base) if base else sympy.log(sympy.Abs(x))


_POOL_ROWS: list[Primitive] = [
    # binary arithmetic (printed infix)
    Primitive("add", 2, (ANY, ANY), "elementwise", torch.add, lambda a, b: a + b, 1,
              "a + b", infix="+", commutative=True),
    Primitive("sub", 2, (ANY, ANY), "elementwise", torch.sub, lambda a, b: a - b, 1,
              "a - b", infix="-"),
    Primitive("mul", 2, (ANY, ANY), "elementwise", torch.mul, lambda a, b: a * b, 1,
              "a * b", infix="*", commutative=True),
    Primitive("div", 2, (ANY, ANY), "elementwise", safe_div, lambda a, b: a / b, 1,
              "a / (b + eps): eps-guarded division", infix="/"),
    Primitive("neg", 1, (ANY,), "elementwise", torch.neg, lambda a: -a, 1, "-a", infix="-"),
    Primitive("max", 2, (ANY, ANY), "elementwise", torch.maximum, sympy.Max, 1,
              "element-wise maximum of a and b", commutative=True),
    Primitive("min", 2, (ANY, ANY), "elementwise", torch.minimum, sympy.Min, 1,
              "element-wise minimum of a and b", commutative=True),
    Primitive("power", 2, (ANY, ANY), "elementwise", lambda a, b: a.abs().pow(b),
              lambda a, b: sympy.Abs(a) ** b, 2, "|a| ** b"),
    Primitive("interp", 3, (ANY, ANY, ANY), "elementwise", torch.lerp,
              lambda x, y, a: (1 - a) * x + a * y, 2,
              "(1 - c) * a + c * b; interp(g, m, 0.9) = 0.1 * g + 0.9 * m, an EMA with beta 0.9"),
    Primitive("clip", 2, (ANY, SCALAR), "elementwise", _clip,
              lambda x, c: sympy.Max(-sympy.Abs(c), sympy.Min(x, sympy.Abs(c))), 2,
              "clamp a element-wise to [-|b|, |b|]"),
    # unary element-wise
    Primitive("abs", 1, (ANY,), "elementwise", torch.abs, sympy.Abs, 1, "|a|"),
    Primitive("sign", 1, (ANY,), "elementwise", torch.sign, sympy.sign, 1,
              "-1, 0 or 1 by the sign of a; sign(0) = 0"),
    Primitive("sqrt", 1, (ANY,), "elementwise", lambda x: x.abs().sqrt(), _s_abs_sqrt, 1,
              "sqrt(|a|)"),
    Primitive("square", 1, (ANY,), "elementwise", torch.square, lambda x: x**2, 1, "a ** 2"),
    Primitive("cube", 1, (ANY,), "elementwise", lambda x: x * x * x, lambda x: x**3, 1,
              "a ** 3"),
    Primitive("cbrt", 1, (ANY,), "elementwise", _cbrt,
              lambda x: sympy.sign(x) * sympy.Abs(x) ** sympy.Rational(1, 3), 2,
              "sign(a) * |a| ** (1/3)"),
    Primitive("exp", 1, (ANY,), "elementwise", torch.exp, sympy.exp, 1, "e ** a"),
    Primitive("exp2", 1, (ANY,), "elementwise", torch.exp2, lambda x: 2**x, 1, "2 ** a"),
    Primitive("expm1", 1, (ANY,), "elementwise", torch.expm1, lambda x: sympy.exp(x) - 1, 1,
              "e ** a - 1"),
    Primitive("log", 1, (ANY,), "elementwise", lambda x: torch.log(x.abs() + EPS), _s_log(None),
              1, "ln(|a| + eps)"),
    Primitive("log1p", 1, (ANY,), "elementwise", lambda x: torch.log1p(x.abs()),
              lambda x: sympy.log(1 + sympy.Abs(x)), 1, "ln(1 + |a|)"),
    Primitive("log2", 1, (ANY,), "elementwise", lambda x: torch.log2(x.abs() + EPS), _s_log(2),
              1, "log2(|a| + eps)"),
    Primitive("log10", 1, (ANY,), "elementwise", lambda x: torch.log10(x.abs() + EPS),
              _s_log(10), 1, "log10(|a| + eps)"),
    Primitive("reciprocal", 1, (ANY,), "elementwise", lambda x: safe_div(1.0, x),
              lambda x: 1 / x, 1, "1 / (a + eps)"),
    Primitive("negative", 1, (ANY,), "elementwise", torch.neg, lambda x: -x, 1,
              "-a (named form of unary minus)"),
    Primitive("sin", 1, (ANY,), "elementwise", torch.sin, sympy.sin, 1, "sin(a)"),
    Primitive("cos", 1, (ANY,), "elementwise", torch.cos, sympy.cos, 1, "cos(a)"),
    Primitive("tan", 1, (ANY,), "elementwise", torch.tan, sympy.tan, 1, "tan(a)"),
    Primitive("arcsin", 1, (ANY,), "elementwise", lambda x: torch.asin(_unit(x)), sympy.asin,
              1, "arcsin(clamp(a, -1, 1))"),
    Primitive("arccos", 1, (ANY,), "elementwise", lambda x: torch.acos(_unit(x)), sympy.acos,
              1, "arccos(clamp(a, -1, 1))"),
    Primitive("arctan", 1, (ANY,), "elementwise", torch.atan, sympy.atan, 1, "arctan(a)"),
    Primitive("sinh", 1, (ANY,), "elementwise", torch.sinh, sympy.sinh, 1, "sinh(a)"),
    Primitive("cosh", 1, (ANY,), "elementwise", torch.cosh, sympy.cosh, 1, "cosh(a)"),
    Primitive("tanh", 1, (ANY,), "elementwise", torch.tanh, sympy.tanh, 1, "tanh(a)"),
    Primitive("arcsinh", 1, (ANY,), "elementwise", torch.asinh, sympy.asinh, 1, "arcsinh(a)"),
    Primitive("arccosh", 1, (ANY,), "elementwise", lambda x: torch.acosh(x.abs().clamp(min=1.0)),
              lambda x: sympy.acosh(sympy.Abs(x)), 1, "arccosh(max(|a|, 1))"),
    Primitive("arctanh", 1, (ANY,), "elementwise",
              lambda x: torch.atanh(x.clamp(-1.0 + 1e-7, 1.0 - 1e-7)), sympy.atanh, 1,
              "arctanh(clamp(a, -1 + 1e-7, 1 - 1e-7))"),
    # reductions and tensor operations (per seed: never over the leading batch dims)
    Primitive("norm", 1, (TENSOR,), SCALAR, _norm, None, 2, "sqrt(sum(a ** 2)) over the whole tensor (scalar)",
              reduces=True),
    Primitive("mean", 1, (TENSOR,), SCALAR, _mean, None, 2, "sum(a) / numel(a) over the whole tensor (scalar)",
              reduces=True),
    Primitive("dot", 2, (TENSOR, TENSOR), SCALAR, _dot, None, 2, "sum(a * b) over the whole tensor (scalar)",
              commutative=True, reduces=True),
    Primitive("cosine_sim", 2, (TENSOR, TENSOR), SCALAR, _cosine_sim, None, 3,
              "dot(a, b) / (norm(a) * norm(b) + eps) (scalar)", commutative=True, reduces=True),
    Primitive("clip_by_norm", 2, (TENSOR, SCALAR), TENSOR, _clip_by_norm, None, 3,
              "a * min(1, |b| / (norm(a) + eps)): scales down, never up", reduces=True),
    # constants
    Primitive("pi", 0, (), SCALAR, _const(math.pi), lambda: sympy.pi, 0, "pi = 3.141592653589793"),
    Primitive("e", 0, (), SCALAR, _const(math.e), lambda: sympy.E, 0, "e = 2.718281828459045"),
    Primitive("eps", 0, (), SCALAR, _const(EPS), lambda: sympy.Float(EPS), 0,
              f"{EPS:g}, the guard of division and logarithms"),
]

POOL: dict[str, Primitive] = {p.name: p for p in _POOL_ROWS}
INFIX_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div"}


# Named selections of the table that mutation draws new functions from (`[mutation] pool`).
# "paper": the Lion paper's pool (Chen et al. 2023, "Symbolic Discovery of Optimization
# Algorithms", 45 functions) has no per-tensor `mean`; the `ts512` exploit of this engine's
# searches used it. The selection is this table without `mean`. The paper's released function
# list itself was not available to check further, so functions it may have that this table
# lacks are not added, and `neg` / `negative` (one function, infix and named) both stay.
PAPER_EXCLUDED = ("mean",)
POOLS: dict[str, tuple[str, ...]] = {
    "default": tuple(POOL),
    "paper": tuple(name for name in POOL if name not in PAPER_EXCLUDED),
}

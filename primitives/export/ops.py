"""Torch expression templates per pool primitive, for the single-tensor and foreach paths.

Every template reproduces `POOL[name].torch_fn` (tests check each against the pool): `sqrt` and
the logarithms act on |x|, division is `a / (b + 1e-08)`, inverse trigonometric functions clamp.
`{0}`, `{1}`, `{2}` are the argument expressions.

- `SINGLE`: one tensor per argument (a parameter-shaped tensor, a 0-d tensor, or -- outside
  `TENSOR_POS` -- a Python number). Always returns a fresh tensor (never an alias of an input),
  which the in-place planner relies on.
- `INPLACE[(name, pos)]`: the same value written into argument `pos` (a dead temporary or state
  buffer); a template may hold several statements separated by newlines.
- `FOREACH[(name, sig)]` / `FOREACH_INPLACE[(name, sig, pos)]`: lists of tensors; `sig` has one
  letter per argument: `L` a list, `S` a Python number. Ops without a `torch._foreach_*` form
  fall back to a list comprehension over `SINGLE` (see `primitives.export.emit`).
"""

from __future__ import annotations

import re

import torch

_UNIT = "-1.0, 1.0"
_ATANH = f"{-1.0 + 1e-7!r}, {1.0 - 1e-7!r}"  # the pool's clamp for arctanh

SINGLE: dict[str, str] = {
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "{0} / ({1} + 1e-08)",
    "neg": "-{0}",
    "negative": "-{0}",
    "max": "torch.maximum({0}, {1})",
    "min": "torch.minimum({0}, {1})",
    "power": "torch.pow(abs({0}), {1})",
    "interp": "torch.lerp({0}, {1}, {2})",
    "clip": "torch.clamp({0}, -abs({1}), abs({1}))",
    "abs": "torch.abs({0})",
    "sign": "torch.sign({0})",
    "sqrt": "torch.sqrt(torch.abs({0}))",
    "square": "torch.square({0})",
    "cube": "{0} * {0} * {0}",
    "cbrt": "torch.sign({0}) * torch.abs({0}).pow(1.0 / 3.0)",
    "exp": "torch.exp({0})",
    "exp2": "torch.exp2({0})",
    "expm1": "torch.expm1({0})",
    "log": "torch.log(torch.abs({0}) + 1e-08)",
    "log1p": "torch.log1p(torch.abs({0}))",
    "log2": "torch.log2(torch.abs({0}) + 1e-08)",
    "log10": "torch.log10(torch.abs({0}) + 1e-08)",
    "reciprocal": "1.0 / ({0} + 1e-08)",
    "sin": "torch.sin({0})",
    "cos": "torch.cos({0})",
    "tan": "torch.tan({0})",
    "arcsin": f"torch.asin(torch.clamp({{0}}, {_UNIT}))",
    "arccos": f"torch.acos(torch.clamp({{0}}, {_UNIT}))",
    "arctan": "torch.atan({0})",
    "sinh": "torch.sinh({0})",
    "cosh": "torch.cosh({0})",
    "tanh": "torch.tanh({0})",
    "arcsinh": "torch.asinh({0})",
    "arccosh": "torch.acosh(torch.abs({0}).clamp(min=1.0))",
    "arctanh": f"torch.atanh(torch.clamp({{0}}, {_ATANH}))",
    # reductions: per parameter tensor, as 0-d tensors
    "norm": "torch.linalg.vector_norm({0})",
    "mean": "torch.mean({0})",
    "dot": "torch.sum({0} * {1})",
    "cosine_sim": "torch.sum({0} * {1}) / (torch.linalg.vector_norm({0})"
                  " * torch.linalg.vector_norm({1}) + 1e-08)",
    "clip_by_norm": "{0} * torch.clamp(abs({1}) / (torch.linalg.vector_norm({0}) + 1e-08),"
                    " max=1.0)",
    # constants are Python numbers in the generated code
    "pi": "3.141592653589793",
    "e": "2.718281828459045",
    "eps": "1e-08",
}

# Positions whose argument must be a tensor even when it is a uniform scalar (a Python number
# gets wrapped by `_t(x, like)`): torch.maximum / lerp / clamp's first argument take no numbers.
TENSOR_POS: dict[str, tuple[int, ...]] = {
    "max": (0, 1), "min": (0, 1), "interp": (0, 1), "clip": (0,), "clip_by_norm": (0,),
}

# Ops whose SINGLE template is plain Python arithmetic, valid on two Python numbers.
PY_ARITH = frozenset({"add", "sub", "mul", "neg", "negative"})

_UNARY_METHOD = {  # pool name -> in-place method chain on the argument itself
    "abs": "abs_()", "sign": "sign_()", "sqrt": "abs_().sqrt_()", "square": "square_()",
    "exp": "exp_()", "exp2": "exp2_()", "expm1": "expm1_()",
    "log": "abs_().add_(1e-08).log_()", "log1p": "abs_().log1p_()",
    "log2": "abs_().add_(1e-08).log2_()", "log10": "abs_().add_(1e-08).log10_()",
    "reciprocal": "add_(1e-08).reciprocal_()", "neg": "neg_()", "negative": "neg_()",
    "sin": "sin_()", "cos": "cos_()", "tan": "tan_()", "arctan": "atan_()",
    "sinh": "sinh_()", "cosh": "cosh_()", "tanh": "tanh_()", "arcsinh": "asinh_()",
    "arcsin": f"clamp_({_UNIT}).asin_()", "arccos": f"clamp_({_UNIT}).acos_()",
    "arctanh": f"clamp_({_ATANH}).atanh_()", "arccosh": "abs_().clamp_(min=1.0).acosh_()",
}

INPLACE: dict[tuple[str, int], str] = {
    **{(name, 0): "{0}." + chain for name, chain in _UNARY_METHOD.items()},
    ("add", 0): "{0}.add_({1})", ("add", 1): "{1}.add_({0})",
    ("sub", 0): "{0}.sub_({1})", ("sub", 1): "{1}.neg_().add_({0})",
    ("mul", 0): "{0}.mul_({1})", ("mul", 1): "{1}.mul_({0})",
    ("div", 0): "{0}.div_({1} + 1e-08)",
    ("max", 0): "torch.maximum({0}, _t({1}, {0}), out={0})",
    ("min", 0): "torch.minimum({0}, _t({1}, {0}), out={0})",
    ("power", 0): "{0}.abs_().pow_({1})",
    # lerp_ on the end point: (1 - a) x + a y == y + (1 - a) (x - y); last-bit rounding differs
    ("interp", 0): "{0}.lerp_({1}, {2})", ("interp", 1): "{1}.lerp_({0}, 1 - {2})",
    ("clip", 0): "{0}.clamp_(-abs({1}), abs({1}))",
    ("clip_by_norm", 0): "{0}.mul_(torch.clamp(abs({1}) / (torch.linalg.vector_norm({0})"
                         " + 1e-08), max=1.0))",
}

_FE_UNARY = {  # pool name -> chain of torch._foreach_ ops applied innermost first
    "abs": ("abs",), "sign": ("sign",), "sqrt": ("abs", "sqrt"), "exp": ("exp",),
    "expm1": ("expm1",), "log1p": ("abs", "log1p"), "neg": ("neg",), "negative": ("neg",),
    "sin": ("sin",), "cos": ("cos",), "tan": ("tan",), "arctan": ("atan",), "sinh": ("sinh",),
    "cosh": ("cosh",), "tanh": ("tanh",),
}


def _fe_chain(ops: tuple[str, ...], arg: str) -> str:
    for op in ops:
        arg = f"torch._foreach_{op}({arg})"
    return arg


FOREACH: dict[tuple[str, str], str] = {
    **{(name, "L"): _fe_chain(ops, "{0}") for name, ops in _FE_UNARY.items()},
    ("square", "L"): "torch._foreach_mul({0}, {0})",
    ("cube", "L"): "torch._foreach_mul(torch._foreach_mul({0}, {0}), {0})",
    ("log", "L"): "torch._foreach_log(torch._foreach_add(torch._foreach_abs({0}), 1e-08))",
    ("log2", "L"): "torch._foreach_log2(torch._foreach_add(torch._foreach_abs({0}), 1e-08))",
    ("log10", "L"): "torch._foreach_log10(torch._foreach_add(torch._foreach_abs({0}), 1e-08))",
    ("reciprocal", "L"): "torch._foreach_reciprocal(torch._foreach_add({0}, 1e-08))",
    ("arcsin", "L"): "torch._foreach_asin(torch._foreach_clamp_max("
                     "torch._foreach_clamp_min({0}, -1.0), 1.0))",
    ("arccos", "L"): "torch._foreach_acos(torch._foreach_clamp_max("
                     "torch._foreach_clamp_min({0}, -1.0), 1.0))",
    ("add", "LL"): "torch._foreach_add({0}, {1})", ("add", "LS"): "torch._foreach_add({0}, {1})",
    ("add", "SL"): "torch._foreach_add({1}, {0})",
    ("sub", "LL"): "torch._foreach_sub({0}, {1})", ("sub", "LS"): "torch._foreach_sub({0}, {1})",
    ("sub", "SL"): "torch._foreach_add(torch._foreach_neg({1}), {0})",
    ("mul", "LL"): "torch._foreach_mul({0}, {1})", ("mul", "LS"): "torch._foreach_mul({0}, {1})",
    ("mul", "SL"): "torch._foreach_mul({1}, {0})",
    ("div", "LL"): "torch._foreach_div({0}, torch._foreach_add({1}, 1e-08))",
    ("div", "LS"): "torch._foreach_div({0}, {1} + 1e-08)",
    ("max", "LL"): "torch._foreach_maximum({0}, {1})",
    ("max", "LS"): "torch._foreach_clamp_min({0}, {1})",
    ("max", "SL"): "torch._foreach_clamp_min({1}, {0})",
    ("min", "LL"): "torch._foreach_minimum({0}, {1})",
    ("min", "LS"): "torch._foreach_clamp_max({0}, {1})",
    ("min", "SL"): "torch._foreach_clamp_max({1}, {0})",
    ("power", "LL"): "torch._foreach_pow(torch._foreach_abs({0}), {1})",
    ("power", "LS"): "torch._foreach_pow(torch._foreach_abs({0}), {1})",
    ("power", "SL"): "torch._foreach_pow(abs({0}), {1})",
    ("interp", "LLS"): "torch._foreach_lerp({0}, {1}, {2})",
    ("interp", "LLL"): "torch._foreach_lerp({0}, {1}, {2})",
    ("clip", "LS"): "torch._foreach_clamp_max(torch._foreach_clamp_min({0}, -abs({1})),"
                    " abs({1}))",
    ("norm", "L"): "torch._foreach_norm({0})",
}


def _fe_inplace_chain(ops: tuple[str, ...]) -> str:
    return "\n".join(f"torch._foreach_{op}_({{0}})" for op in ops)


FOREACH_INPLACE: dict[tuple[str, str, int], str] = {
    **{(name, "L", 0): _fe_inplace_chain(ops) for name, ops in _FE_UNARY.items()},
    ("square", "L", 0): "torch._foreach_mul_({0}, {0})",
    ("log", "L", 0): "torch._foreach_abs_({0})\ntorch._foreach_add_({0}, 1e-08)\n"
                     "torch._foreach_log_({0})",
    ("reciprocal", "L", 0): "torch._foreach_add_({0}, 1e-08)\ntorch._foreach_reciprocal_({0})",
    ("add", "LL", 0): "torch._foreach_add_({0}, {1})", ("add", "LL", 1): "torch._foreach_add_({1}, {0})",
    ("add", "LS", 0): "torch._foreach_add_({0}, {1})", ("add", "SL", 1): "torch._foreach_add_({1}, {0})",
    ("sub", "LL", 0): "torch._foreach_sub_({0}, {1})", ("sub", "LS", 0): "torch._foreach_sub_({0}, {1})",
    ("mul", "LL", 0): "torch._foreach_mul_({0}, {1})", ("mul", "LL", 1): "torch._foreach_mul_({1}, {0})",
    ("mul", "LS", 0): "torch._foreach_mul_({0}, {1})", ("mul", "SL", 1): "torch._foreach_mul_({1}, {0})",
    ("div", "LL", 0): "torch._foreach_div_({0}, torch._foreach_add({1}, 1e-08))",
    ("div", "LS", 0): "torch._foreach_div_({0}, {1} + 1e-08)",
    ("max", "LL", 0): "torch._foreach_maximum_({0}, {1})",
    ("max", "LS", 0): "torch._foreach_clamp_min_({0}, {1})",
    ("min", "LL", 0): "torch._foreach_minimum_({0}, {1})",
    ("min", "LS", 0): "torch._foreach_clamp_max_({0}, {1})",
    ("power", "LS", 0): "torch._foreach_abs_({0})\ntorch._foreach_pow_({0}, {1})",
    ("interp", "LLS", 0): "torch._foreach_lerp_({0}, {1}, {2})",
    ("interp", "LLS", 1): "torch._foreach_lerp_({1}, {0}, 1 - {2})",
    ("clip", "LS", 0): "torch._foreach_clamp_min_({0}, -abs({1}))\n"
                       "torch._foreach_clamp_max_({0}, abs({1}))",
}


_FOREACH_NAME = re.compile(r"torch\.(_foreach_\w+)")


def foreach_names(template: str) -> set[str]:
    return set(_FOREACH_NAME.findall(template))


def available(template: str) -> bool:
    """True when this torch has every torch._foreach_* op the template calls."""
    return all(hasattr(torch, name) for name in foreach_names(template))

"""Text tables for `primitives.export`: torch expression templates per pool primitive, and the
fixed parts of the generated optimizer file.

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
  fall back to a list comprehension over `SINGLE` (see `primitives.export`).
"""

from __future__ import annotations

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

REDUCTIONS = frozenset({"norm", "mean", "dot", "cosine_sim"})

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

# Helpers copied into every exported file (each short; the generated code calls them).
HELPERS = '''
def _t(x, like):
    """x as a tensor of like's dtype and device (for torch ops that take no Python numbers)."""
    return torch.as_tensor(x, dtype=like.dtype, device=like.device)


def _axpy_(y, x, a):
    """y += a * x. `a` is a Python number, or a 0-d tensor under torch.compile."""
    if isinstance(a, torch.Tensor):
        y.add_(x * a)
    else:
        y.add_(x, alpha=a)


def _foreach_axpy_(ys, xs, a):
    if isinstance(a, torch.Tensor):
        torch._foreach_add_(ys, torch._foreach_mul(xs, a))
    else:
        torch._foreach_add_(ys, xs, alpha=a)


def _scalar(x):
    """The eager fast path wants Python numbers; under torch.compile a 0-d tensor stays a tensor
    (a graph input), so changing it -- e.g. a scheduler filling lr in place -- never recompiles."""
    if isinstance(x, torch.Tensor) and not torch.compiler.is_compiling():
        return x.item()
    return x
'''

# The generated file. `$name` fields are filled by primitives.export from the checked model.
FILE_TEMPLATE = '''"""$docstring"""

import math

import torch

__all__ = ["$class_name"]

# Live state slots: (state key, uniform). A uniform slot holds the same value for every element
# (e.g. a step counter), so it is stored as a 0-d tensor per parameter.
_SLOTS = $slots
# torch._foreach_* ops the foreach path uses; without them foreach is unavailable.
_FOREACH_OPS = $foreach_ops
_FOREACH_OK = all(hasattr(torch, name) for name in _FOREACH_OPS)
# Devices with native (fused multi-tensor) foreach kernels. On CPU torch._foreach_* is a loop
# that keeps every temporary of the group alive at once; the single-tensor path is faster there.
_NATIVE_FOREACH = ("cuda", "xpu")
# An element-wise program (no reduction, no uniform slot) runs on CPU in chunks of _CHUNK
# elements per intra-op thread: one chunk's temporaries stay in cache (64K floats x 4 tensors
# = 1 MiB per thread, within a core's L2) through all its statements, so memory traffic falls
# from every statement's reads and writes to about one pass over p, g and the state. Each
# element gets the same arithmetic (bit-identical for Lion's ops; transcendental kernels may
# differ in the last bit where a range's scalar tail falls, as with thread counts). Smaller chunks
# lose more to per-op overhead, and below torch's 32K-element grain an op runs on one thread.
_CHUNKABLE = $chunkable
_CHUNK = 1 << 16
$helpers

def _check_number(name, x, rule):
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValueError(f"Invalid {name}: {x!r} (a finite number is required)")
    if rule in ("lr", "nonneg") and x < 0.0:
        raise ValueError(f"Invalid {name}: {x!r} (must be >= 0)")
    if rule == "unit" and not 0.0 <= x < 1.0:
        raise ValueError(f"Invalid {name}: {x!r} (must be in [0, 1))")


def _check_group(group):
    """Hyperparameter validation (raises ValueError), run for every param group."""
    lr = group["lr"]
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1 or not lr.is_floating_point():
            raise ValueError("Invalid lr: a tensor lr must be a floating-point 0-d tensor")
        lr = lr.item()
$check_body
    if not isinstance(group["maximize"], bool):
        raise ValueError(f"Invalid maximize: {group['maximize']!r}")
    if group["foreach"] not in (None, True, False):
        raise ValueError(f"Invalid foreach: {group['foreach']!r}")
    if group["foreach"] and not _FOREACH_OK:
        raise ValueError("foreach=True needs torch._foreach_* ops this torch does not have")
    dtype = group["state_dtype"]
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"Invalid state_dtype: {dtype!r} (a floating-point torch.dtype)")


def _hyper(group):
    """The group's scalars, in the order the update functions take them."""
$hyper_body


def _update_single(p, g, st, $hparams):
    """One parameter tensor: p is updated in place, st (its state tensors) too; g is read only."""
$single_body


def _update_foreach(ps, gs, st, $hparams):
    """Lists of parameters of one device and dtype; the same computation with torch._foreach_*."""
$foreach_body


class $class_name(torch.optim.Optimizer):
    """$short_doc

    Args:
        params: parameters or param groups.
$args_doc
        maximize: maximize the objective (the gradient's sign is flipped; p.grad is not changed).
        foreach: None (default) uses the torch._foreach_* path when native foreach kernels
            are available (CUDA, XPU) and the step is not being compiled; True / False force
            it on / off. Both paths compute the same values.
        state_dtype: dtype of the state buffers (e.g. torch.bfloat16); None keeps the
            parameter's dtype. The update is computed in the parameter's dtype either way.
    """

    def __init__(self, params, $init_sig, *, maximize=False, foreach=None, state_dtype=None):
        defaults = dict($defaults_body, maximize=maximize, foreach=foreach,
                        state_dtype=state_dtype)
        _check_group(defaults)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("state_dtype", None)

    def add_param_group(self, param_group):
        _check_group({**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}})
        super().add_param_group(param_group)
        for p in self.param_groups[-1]["params"]:
            if not p.is_floating_point():
                self.param_groups.pop()
                raise ValueError(f"$class_name supports real floating-point parameters, "
                                 f"not {p.dtype}")

    def load_state_dict(self, state_dict):
        # torch casts floating state to the parameter's dtype on load; restore state_dtype.
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if state:
                    for key, uniform in _SLOTS:
                        state[key] = state[key].to(_state_dtype(group, p, uniform))

    def _state(self, p, group):
        """The parameter's state tensors, created lazily (zeros) on its first step."""
        state = self.state[p]
        if not state:
            for key, uniform in _SLOTS:
                dtype = _state_dtype(group, p, uniform)
                state[key] = (torch.zeros((), dtype=dtype, device=p.device) if uniform else
                              torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format))
        return tuple(state[key] for key, _ in _SLOTS)

    @torch.no_grad()
    def step(self, closure=None):
        """One optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group):
        params, grads, states = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("$class_name does not support sparse gradients")
            params.append(p)
            grads.append(p.grad)
            states.append(self._state(p, group))
        if not params:
            return
        h = _hyper(group)
        foreach = group["foreach"]
        if foreach is None:  # as torch.optim: foreach where native kernels exist (CUDA, XPU)
            foreach = (_FOREACH_OK and not torch.compiler.is_compiling()
                       and all(p.device.type in _NATIVE_FOREACH for p in params))
        if not foreach:
            for p, g, st in zip(params, grads, states):
                _apply_single(p, g, st, h, group["maximize"])
            return
        for idx in _buckets(params, states):
            gs = [grads[i] for i in idx]
            if group["maximize"]:
                gs = torch._foreach_neg(gs)
            st = tuple([states[i][k] for i in idx] for k in range(len(_SLOTS)))
            _update_foreach([params[i] for i in idx], gs, st, *h)


def _chunk_size(p, g, st):
    """Elements per chunk for this parameter, or 0 to update it in one call."""
    # is_compiling() first: under torch.compile the rest is never traced (inductor fuses the
    # statements anyway, and get_num_threads() would break the graph once per parameter)
    if torch.compiler.is_compiling() or not _CHUNKABLE or p.device.type != "cpu":
        return 0
    chunk = _CHUNK * torch.get_num_threads()
    if p.numel() <= chunk or not all(t.is_contiguous() for t in (p, g, *st)):
        return 0
    return chunk


def _apply_single(p, g, st, h, maximize):
    """_update_single on one parameter, in cache-sized chunks where that is possible."""
    chunk = _chunk_size(p, g, st)
    if not chunk:
        _update_single(p, -g if maximize else g, st, *h)
        return
    flat_p, flat_g, flat_st = p.view(-1), g.view(-1), [s.view(-1) for s in st]
    for a in range(0, p.numel(), chunk):
        b = a + chunk
        g_chunk = flat_g[a:b]
        _update_single(flat_p[a:b], -g_chunk if maximize else g_chunk,
                       tuple(s[a:b] for s in flat_st), *h)


def _state_dtype(group, p, uniform):
    """state_dtype, or the parameter's dtype. A uniform slot is one number per parameter, so it
    is kept in float32 at least: a bfloat16 step counter would stop counting at 256."""
    dtype = group["state_dtype"] or p.dtype
    return torch.promote_types(dtype, torch.float32) if uniform else dtype


def _buckets(params, states):
    """Indices of parameters grouped by device and dtypes: foreach lists must agree on them."""
    buckets = {}
    for i, (p, st) in enumerate(zip(params, states)):
        key = (p.device, p.dtype) + tuple(s.dtype for s in st)
        buckets.setdefault(key, []).append(i)
    return list(buckets.values())
'''

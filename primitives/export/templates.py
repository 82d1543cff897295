"""The class text: the fixed parts of the generated optimizer file and the generated methods
that check and read the hyperparameters of a parameter group."""

from __future__ import annotations

from string import Template

from optsearch.primitives.export.spec import Spec

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

# The generated file. `$name` fields are filled by `render` from the checked model.
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


def _hyper_body(spec: Spec, args) -> list[str]:
    """Body of `_hyper(group)`: the hyperparameters as the update functions take them."""
    lines = []
    for name, _, members in args:
        if len(members) > 1:
            lines.append(f"{', '.join('h_' + m for m in members)} = group[{name!r}]")
        elif name == "lr":
            lines.append("h_lr = _scalar(group['lr'])")
        else:
            lines.append(f"h_{name} = group[{name!r}]")
    lines.append(f"return ({', '.join('h_' + h.name for h in spec.hypers)},)")
    return lines


def _check_body(spec: Spec, args) -> list[str]:
    """Body of `_check_group(group)`: every hyperparameter against its rule."""
    rules = {h.name: h.rule for h in spec.hypers}
    lines = ["_check_number('lr', lr, 'lr')"]
    for name, _, members in args:
        if len(members) > 1:
            lines.append(f"if not isinstance(group[{name!r}], (tuple, list)) or "
                         f"len(group[{name!r}]) != {len(members)}:")
            lines.append(f'    raise ValueError(f"Invalid {name}: {{group[{name!r}]!r}}")')
            lines += [f"_check_number({m!r}, group[{name!r}][{j}], {rules[m]!r})"
                      for j, m in enumerate(members)]
        elif name != "lr":
            lines.append(f"_check_number({name!r}, group[{name!r}], {rules[name]!r})")
    return lines


def _doc_text(text: str) -> str:
    """Text that stays inside a triple-quoted docstring whatever it holds (a recogniser's name,
    sympy output): backslashes and quotes escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _indent(lines: list[str], depth: int = 1) -> str:
    return "\n".join("    " * depth + line for line in lines)


def render(spec: Spec, args, *, class_name: str, docs: tuple[str, str, str], slots: tuple,
           chunkable: bool, foreach_ops: set[str], bodies: tuple[list[str], list[str]]) -> str:
    """The file: FILE_TEMPLATE filled with the class name, docstrings (module, class summary,
    arguments), live slots, chunkability, foreach ops and the two update-function bodies."""
    doc, short, args_doc = docs
    single_body, foreach_body = bodies
    return Template(FILE_TEMPLATE).substitute(
        docstring=_doc_text(doc), short_doc=_doc_text(short), class_name=class_name,
        args_doc=_doc_text(args_doc),
        slots=repr(slots), chunkable=repr(chunkable),
        foreach_ops="(\n" + "".join(f"    {name!r},\n" for name in sorted(foreach_ops)) + ")",
        helpers=HELPERS, check_body=_indent(_check_body(spec, args)),
        hyper_body=_indent(_hyper_body(spec, args)),
        hparams=", ".join("h_" + h.name for h in spec.hypers),
        single_body=_indent(single_body), foreach_body=_indent(foreach_body),
        init_sig=", ".join(f"{name}={default}" for name, default, _ in args),
        defaults_body=", ".join(f"{name}={name}" for name, _, _ in args))

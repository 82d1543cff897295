"""Reference interpreter: executes a program statement by statement over torch tensors.

Deliberately simple and independent of the code generator, so that the generated code can be
tested against it. Every literal becomes a 0-d tensor of the weight's dtype and device.
"""

from __future__ import annotations

import torch

from optsearch.primitives.pool import POOL
from optsearch.primitives.program import Program


def _value(arg, env, like):
    if isinstance(arg, str):
        return env[arg]
    return torch.full((), arg, dtype=like.dtype, device=like.device)


def execute(program: Program, w, g, state, lr, batch_dims: int = 0):
    """One call: returns (update, new_state tuple)."""
    if len(state) != program.n_slots:
        raise ValueError(f"program has {program.n_slots} state slots, got {len(state)}")
    lr = torch.as_tensor(lr, dtype=w.dtype, device=w.device)
    env = dict(zip(program.params, (w, g, *state, lr)))
    for stmt in program.statements:
        prim = POOL[stmt.op]
        args = [_value(a, env, w) for a in stmt.args]
        if prim.arity == 0:
            env[stmt.target] = prim.torch_fn(w)
        elif prim.reduces:
            env[stmt.target] = prim.torch_fn(*args, bd=batch_dims)
        else:
            env[stmt.target] = prim.torch_fn(*args)
    update, *new_state = (env[name] for name in program.returns)
    return update, tuple(new_state)


def run_steps(program: Program, w, grads, lrs, batch_dims: int = 0):
    """Run several calls with zero-initialised state and w <- w - update; return the updates."""
    state = tuple(torch.zeros_like(w) for _ in range(program.n_slots))
    updates = []
    for g, lr in zip(grads, lrs):
        update, state = execute(program, w, g, state, lr, batch_dims)
        update = update.expand_as(w)
        w = w - update
        updates.append(update)
    return updates

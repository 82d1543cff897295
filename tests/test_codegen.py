"""Generated code agrees with the reference interpreter, on plain and on stacked-seed tensors."""

import numpy as np
import pytest
import torch

from optsearch.primitives import parse
from optsearch.primitives.codegen import compile_program
from optsearch.primitives.interpreter import execute
from optsearch.primitives.pool import POOL
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference

TORCH_GEN = torch.Generator().manual_seed(0)


def _inputs(program, shape=(5, 7), dtype=torch.float64):
    w = torch.randn(shape, generator=TORCH_GEN, dtype=dtype)
    g = torch.randn(shape, generator=TORCH_GEN, dtype=dtype)
    state = tuple(torch.randn(shape, generator=TORCH_GEN, dtype=dtype) * 0.1
                  for _ in range(program.n_slots))
    return w, g, state


def _assert_same(program, batch_dims, shape):
    w, g, state = _inputs(program, shape)
    got_u, got_s = compile_program(program, batch_dims)(w, g, state, 0.7)
    ref_u, ref_s = execute(program, w, g, state, 0.7, batch_dims)
    torch.testing.assert_close(got_u.expand_as(w), ref_u.expand_as(w), equal_nan=True)
    rule = compile_program(program, batch_dims)
    for k in rule.live_slots:  # dead slots are passed through, not computed
        torch.testing.assert_close(got_s[k], ref_s[k], equal_nan=True)


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_programs_compiled_equal_interpreted(name):
    _assert_same(load_reference(name), 0, (5, 7))


@pytest.mark.parametrize("name", sorted(POOL))
def test_every_primitive_compiles_and_matches(name):
    prim = POOL[name]
    args = ["g", "m", "0.3"][: prim.arity]
    if prim.arg_kinds and prim.arg_kinds[-1] == "scalar":
        args[-1] = "lr"
    call = f"{name}({', '.join(args)})"
    tail = "    u = x * g\n" if prim.result == "scalar" else "    u = x + g\n"
    text = f"def train(w, g, m, lr):\n    x = {call}\n{tail}    return u, m\n"
    program = parse(text)
    _assert_same(program, 0, (4, 6))
    _assert_same(program, 1, (3, 4, 6))


def test_stacked_seeds_never_mix_in_reductions():
    # With batch_dims=1 each seed's norm is its own: stacking must equal separate runs.
    program = parse("def train(w, g, lr):\n    n = norm(g)\n    u = g / n\n    c = cosine_sim(g, w)\n"
                    "    u = u * c\n    u = clip_by_norm(u, lr)\n    return u\n")
    w, g, _ = _inputs(program, (3, 4, 5))
    stacked, _ = compile_program(program, 1)(w, g, (), 0.5)
    for k in range(3):
        alone, _ = compile_program(program, 0)(w[k], g[k], (), 0.5)
        torch.testing.assert_close(stacked[k], alone)


def test_constant_only_arithmetic_feeding_a_call():
    program = parse("def train(w, g, lr):\n    c = 0.5 * 0.5\n    c = sqrt(c)\n    s = sqrt(lr)\n"
                    "    u = g * c\n    u = u * s\n    return u\n")
    u, _ = compile_program(program)(torch.ones(3), torch.ones(3), (), 4.0)
    assert np.allclose(u.numpy(), 1.0)


def test_works_in_float32_and_with_tensor_lr():
    program = load_reference("lion")
    w, g, state = _inputs(program, dtype=torch.float32)
    u1, _ = compile_program(program)(w, g, state, torch.tensor(0.5))
    u2, _ = compile_program(program)(w, g, state, 0.5)
    assert u1.dtype == torch.float32 and torch.equal(u1, u2)

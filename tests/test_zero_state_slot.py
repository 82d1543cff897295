"""A state slot that holds 0 for ever, and the saturated functions its reads leave behind.

A target-mode search imitating Signum found `arcsin(m / v)` with v a slot that stays 0: the
pool divides m by 0 + eps, and arcsin (clamped) saturates to (pi/2) sign(m). Simplification
reads the slot as 0 exactly, and the saturated arcsin as a scaled sign (approximate, measured).
"""

import math

import pytest
import torch

from optsearch.primitives.interpreter import run_steps
from optsearch.primitives.parser import parse
from optsearch.primitives.pool import POOL
from optsearch.search.distill import rewrite_rules as rr
from optsearch.search.distill.simplify import equivalent, simplify


def _updates(program, steps=6, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 8, generator=gen, dtype=torch.float64)
    grads = [scale * torch.randn(4, 8, generator=gen, dtype=torch.float64) for _ in range(steps)]
    return torch.stack(run_steps(program, w, grads, [0.2 + 0.1 * k for k in range(steps)]))


def test_slots_start_at_zero_and_arccosh_of_a_unit_value_is_exactly_zero():
    """The premises of `zero_state_slot`: the interpreter (the reference of every equivalence
    check) zero-initialises slots, and arccosh(max(|x|, 1)) is exactly 0 for |x| <= 1 -- in
    float32 as in float64, for sin of any finite value."""
    program = parse("def train(w, g, v, lr):\n    u = g + v\n    v = v + 1.0\n"
                    "    return u, v\n")
    first = _updates(program, steps=1)[0]
    gen = torch.Generator().manual_seed(0)
    torch.randn(4, 8, generator=gen, dtype=torch.float64)  # w
    assert torch.equal(first, torch.randn(4, 8, generator=gen, dtype=torch.float64))
    for dtype in (torch.float32, torch.float64):
        x = torch.cat([torch.linspace(-1, 1, 10001, dtype=dtype),
                       torch.sin(1e3 * torch.randn(10000, dtype=dtype))])
        assert torch.equal(POOL["arccosh"].torch_fn(x), torch.zeros_like(x))


SLOT_PROGRAM = """def train(w, g, m, v, lr):
    m = interp(g, m, 0.9)
    s = sin(m)
    d = v + 1.0
    u = m / d
    {v_update}
    u = u * lr
    return u, m, {v_out}
"""


@pytest.mark.parametrize("v_update,v_out,zero", [
    ("t = abs(g)", "v", True),              # never written: returned as read
    ("v = arccosh(s)", "v", True),          # arccosh of |sin| <= 1 is arccosh(1) = 0
    ("v = sin(v)", "v", True),              # sin(0) = 0: holds 0 by induction
    ("v = v * 2.0", "v", True),
    ("v = tanh(m)\n    v = v * 0.0", "v", True),
    ("v = arccosh(m)", "v", False),         # |m| may exceed 1
    ("v = v + 1.0", "v", False),            # 0 on the first step, 1 after
    ("v = cos(v)", "v", False),             # cos(0) = 1
    ("t = abs(g)", "g", False),             # written: keeps the gradient
    ("v = m * v", "v", False),              # 0 for finite m, but m is not known bounded
])
def test_a_slot_that_holds_zero_for_ever_is_read_as_zero(v_update, v_out, zero):
    """Rule: a slot whose new value is exactly 0 whenever it read 0 (never written, or written
    with an exact 0 under the pool's semantics) holds its initial 0 on every step, so its
    reads are the constant 0 -- exactly: the same updates, bit for bit. Any other slot
    stays."""
    program = rr.to_ssa(parse(SLOT_PROGRAM.format(v_update=v_update, v_out=v_out)))
    out = rr.zero_state_slot(program)
    assert (out is not None) == zero
    if zero:
        assert out.n_slots == 1 and "v" not in out.params
        assert torch.equal(_updates(program), _updates(out))


def test_an_unwritten_slot_folds_away_in_the_pipeline():
    """Rule: after the slot is read as 0 the existing exact rules take over (v + 1 -> 1, and
    m / 1 stays a division by a constant): no measure is needed and the result is
    equivalent."""
    program = parse(SLOT_PROGRAM.format(v_update="t = abs(g)", v_out="v"))
    result = simplify(program)
    steps = {s.rule: s.exact for s in result.trace}
    assert steps["zero_state_slot"] and "constant_folding" in steps
    assert result.program.n_slots == 1 and equivalent(program, result.program)
    assert "add" not in [s.op for s in result.program.statements]


def _saturating(op, argument):
    return rr.to_ssa(parse(f"def train(w, g, lr):\n    u = {argument}\n    u = {op}(u)\n"
                           "    u = u * lr\n    return u\n"))


def test_saturation_limits_are_the_pool_functions_at_infinity():
    """The constants of the reading come from the pool's own implementations, clamps included
    (arctanh clamps to 1 - 1e-7, so its limit is atanh(1 - 1e-7), not infinity)."""
    assert rr.saturation_limits("arcsin") == (math.pi / 2, -math.pi / 2)
    assert rr.saturation_limits("arccos") == (0.0, math.pi)
    assert rr.saturation_limits("tanh") == (1.0, -1.0)
    assert rr.saturation_limits("arctanh")[0] == pytest.approx(math.atanh(1 - 1e-7))


@pytest.mark.parametrize("op", rr.SATURATING)
@pytest.mark.parametrize("argument", ["g / 0.0", "g * 100000.0", "100000.0 * g"])
def test_a_saturated_function_is_read_as_a_scaled_sign(op, argument):
    """Rule: f(k x) for a huge gain k (x / 0 divides by eps: k = 1e8) is f(+inf) or f(-inf) by
    the sign of x: equal where |k x| >= 1 for the clamped arcsin / arccos / arctanh, within
    1 / |k x| for arctan / tanh; checked on gradients far from 0."""
    program = _saturating(op, argument)
    out = rr.saturated_gain(program)
    assert out is not None and "sign" in [s.op for s in out.statements]
    assert op not in [s.op for s in out.statements]
    before, after = _updates(program, scale=10.0), _updates(out, scale=10.0)
    gain = 1e8 if "/" in argument else 1e5
    grads = torch.stack([g for g in _grads(scale=10.0)])
    far = grads.abs() >= 1e-2
    bound = 0.0 if op in ("arcsin", "arccos", "arctanh") else 1.0 / (gain * 1e-2)
    assert float((before - after)[far].abs().max()) <= bound + 1e-12


def _grads(steps=6, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    torch.randn(4, 8, generator=gen, dtype=torch.float64)  # w, as in _updates
    return [scale * torch.randn(4, 8, generator=gen, dtype=torch.float64)
            for _ in range(steps)]


def test_the_saturated_reading_is_not_exact_and_needs_a_gain():
    """The reading is approximate: arcsin(x / 0) differs from (pi/2) sign(x) wherever
    |x| < eps. A modest gain (f(100 x)) is not proposed at all: it is not a saturation."""
    program = _saturating("arcsin", "g / 0.0")
    out = rr.saturated_gain(program)
    assert not torch.equal(_updates(program, scale=1e-9), _updates(out, scale=1e-9))
    assert rr.saturated_gain(_saturating("arcsin", "g * 100.0")) is None


# The winner of `optsearch search --target signum` (seed 0, 20,000 evaluations), in small: v
# is written as arccosh(sin(m)) = 0, so m / max(arcsin(v), v) divides by 0 + eps.
SIGNUM_DISGUISE = """def train(w, g, m, v, lr):
    w = sin(m)
    g2 = arcsin(v)
    m = interp(g, w, 0.9)
    sqrt_v = max(g2, v)
    update = m / sqrt_v
    update = arcsin(update)
    lr = lr * 6.336452683775516e-05
    update = update * lr
    v = arccosh(w)
    return update, m, v
"""
# What the ablations made of it before the slot was read: v never written.
SIGNUM_UNWRITTEN = """def train(w, g, m, v, lr):
    m = interp(g, m, 0.9)
    update = m / v
    update = arcsin(update)
    lr = lr * 6.4e-05
    update = update * lr
    return update, m, v
"""


@pytest.fixture(scope="module")
def signum_imitation():
    from optsearch.evaluator.imitation import record_stream
    from optsearch.evaluator.measure import imitation_measure
    from optsearch.evaluator.targets import resolve_target
    return imitation_measure(record_stream(resolve_target("signum")), "imitation of signum")


@pytest.mark.parametrize("text", [SIGNUM_DISGUISE, SIGNUM_UNWRITTEN])
def test_arcsin_of_a_ratio_over_a_zero_slot_is_signum(text, signum_imitation):
    """Rule: arcsin(m / v) with v a slot that stays 0 is (pi/2) sign(m): the slot is read as 0
    exactly, the saturated arcsin as a sign within noise of the imitation measure, and the
    result is named Signum with beta 0.9 and lr (pi/2) * 6.34e-5 ~ 1e-4."""
    result = simplify(parse(text), signum_imitation, signum_imitation)
    exact = {s.rule: s.exact for s in result.trace}
    assert exact["zero_state_slot"] is True and exact["saturated_gain"] is False
    assert result.recognition.name == "Signum"
    hp = result.recognition.hyperparameters
    assert hp["beta"] == pytest.approx(0.9, abs=1e-3)
    assert abs(hp["lr"] / 1e-4 - 1) <= 0.02


def test_without_a_measure_the_slot_goes_but_the_arcsin_stays():
    """The exact part needs no measure; the approximate reading is never applied unmeasured."""
    result = simplify(parse(SIGNUM_DISGUISE))
    assert result.program.n_slots == 1
    assert "arcsin" in [s.op for s in result.program.statements]
    assert "saturated_gain" not in [s.rule for s in result.trace]

"""Export contract: the generated optimizer file is standalone torch code
that reproduces the program, matches the published optimizers, and behaves like a torch.optim
optimizer (groups, state_dict, closure, maximize, foreach, schedulers, torch.compile)."""

from __future__ import annotations

import ast
import copy
import math
import os
import subprocess
import sys
import types
from dataclasses import dataclass, field

import pytest
import torch

from optsearch.primitives.codegen import compile_program
from optsearch.primitives.export import export_source
from optsearch.primitives.export.ops import FOREACH, FOREACH_INPLACE, INPLACE, SINGLE
from optsearch.primitives.pool import POOL
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference

SHAPES = [(13, 7), (29,), ()]  # a matrix, a vector and a 0-d parameter


@dataclass
class FakeRecognition:
    """The duck-typed shape of search.recognize.Recognition."""
    name: str
    hyperparameters: dict
    program: object
    bindings: dict = field(default_factory=dict)


def lion_recognition(**hp):
    values = {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.1, **hp}
    bindings = {(0, 2): "beta1", (2, 2): "beta2", (3, 1): "weight_decay", (5, 1): "lr"}
    return FakeRecognition("Lion", values, load_reference("lion"), bindings)


def load_class(source: str, name: str):
    module = types.ModuleType(f"exported_{name}")
    sys.modules[module.__name__] = module  # torch.compile looks functions' modules up by name
    exec(compile(source, f"<exported {name}>", "exec"), module.__dict__)  # noqa: S102
    return getattr(module, name)


@pytest.fixture(scope="module")
def Lion():
    return load_class(export_source(load_reference("lion"), "Lion", lion_recognition()), "Lion")


def exported(name: str):
    return load_class(export_source(load_reference(name)), "DiscoveredOptimizer")


def make_params(seed=0, shapes=SHAPES, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]


def grads_for(params, step, scale=1.0):
    """The same gradients for every run (drawn on the CPU, then moved to p's device)."""
    gen = torch.Generator().manual_seed(1000 + step)
    return [(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype)).to(p.device)
            for p in params]


def run(opt, params, steps, start=0, before=None):
    """`steps` optimizer steps on fixed gradients; every step must leave p.grad untouched."""
    for t in range(start, start + steps):
        if before:
            before(t)
        grads = grads_for(params, t)
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        assert all(torch.equal(p.grad, g) for p, g in zip(params, grads)), "p.grad mutated"
    return [p.detach().clone() for p in params]


# ----------------------------------------------------------------------------- templates

def _template_args(name: str, gen):
    prim = POOL[name]
    args = [torch.randn(6, 5, generator=gen) * 0.8 for _ in range(prim.arity)]
    if name in ("power", "clip", "clip_by_norm"):
        args[1] = torch.rand((), generator=gen) + 0.5  # a scalar exponent / bound
    if name == "interp":
        args[2] = torch.rand((), generator=gen)
    return args


def _pool_value(name, args):
    prim = POOL[name]
    if prim.arity == 0:
        return prim.torch_fn(torch.zeros(()))
    return prim.torch_fn(*args, bd=0) if prim.reduces else prim.torch_fn(*args)


def _eval(template: str, **env):
    return eval(template, {"torch": torch, "_t": lambda x, like: torch.as_tensor(x)}, env)


def test_every_pool_primitive_has_a_template_that_matches_the_pool():
    """One expression per pool entry, numerically equal to POOL[name].torch_fn."""
    assert set(SINGLE) == set(POOL)
    gen = torch.Generator().manual_seed(0)
    for name in POOL:
        args = _template_args(name, gen)
        want = _pool_value(name, args)
        names = {f"a{i}": a for i, a in enumerate(args)}
        got = _eval(SINGLE[name].format(*names), **names)
        torch.testing.assert_close(torch.as_tensor(got).reshape(want.shape), want,
                                   rtol=1e-6, atol=1e-7, msg=name)


def test_in_place_and_foreach_templates_match_the_pool():
    """In-place and torch._foreach_* forms compute the same values as the pool."""
    gen = torch.Generator().manual_seed(1)
    for (name, pos), template in INPLACE.items():
        args = _template_args(name, gen)
        want = _pool_value(name, args)
        names = {f"a{i}": a.clone() for i, a in enumerate(args)}
        exec(template.format(*names), {"torch": torch,  # noqa: S102
                                       "_t": lambda x, like: torch.as_tensor(x)}, names)
        torch.testing.assert_close(names[f"a{pos}"], want, rtol=1e-5, atol=1e-6, msg=name)
    for (name, sig), template in FOREACH.items():
        args = _template_args(name, gen)
        if sig != "L" * len(sig):
            continue  # scalar signatures use Python numbers: covered by the program tests
        want = _pool_value(name, args)
        names = {f"a{i}": [a] for i, a in enumerate(args)}
        got = _eval(template.format(*names), **names)[0]
        torch.testing.assert_close(got.reshape(want.shape), want, rtol=1e-6, atol=1e-7, msg=name)
    assert all(pos < len(sig) for (_, sig, pos) in FOREACH_INPLACE)


# ----------------------------------------------------------------------------- the programs

@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_every_reference_program_matches_its_compiled_rule(name):
    """The exported optimizer (lr=1: the program's own schedule value) follows the program,
    and the foreach and single-tensor paths give identical results."""
    program = load_reference(name)
    cls = exported(name)
    results = []
    for foreach in (False, True):
        params = make_params()
        results.append(run(cls(params, foreach=foreach), params, 8))
    for a, b in zip(*results):
        assert torch.equal(a, b), "foreach and single-tensor paths differ"
    rule = compile_program(program)
    params = [p.detach().clone() for p in make_params()]
    states = [tuple(torch.zeros_like(p) for _ in range(program.n_slots)) for p in params]
    for t in range(8):
        for i, g in enumerate(grads_for(params, t)):
            update, states[i] = rule(params[i], g, states[i], 1.0)
            params[i] = params[i] - update
    for got, want in zip(results[0], params):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def lion_reference(params, steps, lr=1e-4, betas=(0.9, 0.99), wd=0.1, lrs=None):
    """google/automl lion_pytorch.py, written out."""
    params = [p.detach().clone() for p in params]
    ms = [torch.zeros_like(p) for p in params]
    for t in range(steps):
        step_lr = lrs[t] if lrs else lr
        for p, m, g in zip(params, ms, grads_for(params, t)):
            p.mul_(1 - step_lr * wd)
            p.add_(torch.sign(betas[0] * m + (1 - betas[0]) * g), alpha=-step_lr)
            m.mul_(betas[1]).add_((1 - betas[1]) * g)
    return params


def assert_lion_close(got, want, lr, steps, allowed_flips=0.002):
    """Equal up to float rounding, except rare sign flips where the interpolation is ~0: at
    most `allowed_flips` of the elements differ, each by at most 2 lr per step."""
    for a, b in zip(got, want):
        off = (a - b).abs() > 1e-6
        assert off.float().mean().item() <= allowed_flips
        assert ((a - b).abs() <= 2 * lr * steps + 1e-6).all()


def lion_peers():
    """Published Lion classes that are importable here: lion-pytorch's two, timm's (loaded as
    scripts/bench/export.py does: timm's package needs torchvision, its lion.py only torch)."""
    peers = {}
    try:
        import lion_pytorch
        from lion_pytorch.foreach import Lion as LionForeach
        peers |= {"lion_pytorch.Lion": lion_pytorch.Lion,
                  "lion_pytorch.foreach.Lion": LionForeach}
    except ImportError:
        pass
    from scripts.bench.export import timm_lion_class

    timm_lion, _ = timm_lion_class()
    if timm_lion is not None:
        peers["timm Lion"] = timm_lion
    return peers


LION_SHAPES = [(64, 32), (257,), ()]


@pytest.mark.parametrize("foreach", [False, True])
def test_exported_lion_matches_the_published_rule_and_published_implementations(Lion, foreach):
    """Lion exports as Lion(params, lr, betas, weight_decay) and, over 100 steps, follows the
    reference rule and every published implementation available here."""
    steps, hp = 100, {"lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.1}
    params = make_params(shapes=LION_SHAPES)
    got = run(Lion(params, **hp, foreach=foreach), params, steps)
    want = lion_reference(make_params(shapes=LION_SHAPES), steps, lr=1e-3)
    assert_lion_close(got, want, 1e-3, steps)
    peers = lion_peers()
    if not peers:
        pytest.skip("no published Lion implementation is installed")
    for impl in peers.values():
        other = make_params(shapes=LION_SHAPES)
        theirs = run(impl(other, **hp), other, steps)
        assert_lion_close(got, theirs, 1e-3, steps)


def test_lion_defaults_and_state_are_one_buffer_per_parameter(Lion):
    """Defaults are the discovered values; only the live momentum slot is allocated, lazily
    (nothing before the first step, nothing for a parameter without a gradient), from zeros."""
    params = make_params()
    opt = Lion(params)
    assert set(opt.defaults) == {"lr", "betas", "weight_decay", "maximize", "foreach",
                                 "state_dtype"}
    assert opt.defaults["lr"] == 1e-4 and opt.defaults["betas"] == (0.9, 0.99)
    assert opt.defaults["weight_decay"] == 0.1
    assert opt.defaults["maximize"] is False and opt.defaults["foreach"] is None
    assert len(opt.state) == 0, "state is created on the first step, not in __init__"
    idle = torch.nn.Parameter(torch.ones(4))
    opt.add_param_group({"params": [idle]})
    run(opt, params, 1)
    assert idle not in opt.state and idle.grad is None
    for p, g in zip(params, grads_for(params, 0)):
        assert list(opt.state[p]) == ["m"] and opt.state[p]["m"].shape == p.shape
        torch.testing.assert_close(opt.state[p]["m"], (1 - 0.99) * g)  # m started at zero
    run(opt, params, 1, start=1)
    assert all(list(opt.state[p]) == ["m"] for p in params)


def test_docstring_shows_the_program_and_its_update_equations(Lion):
    """The module and class docstrings say what the optimizer computes."""
    module = sys.modules[Lion.__module__]
    doc = module.__doc__
    assert "def train(w, g, m, lr):" in doc and "update = sign(update)" in doc
    equations = doc[doc.index("Update equations"):]
    assert "update = lr*(w*weight_decay + sign(beta1*m + g*(1 - beta1)))" in equations
    assert "m <- beta2*m + g*(1 - beta2)" in equations and "w <- w - update" in equations
    assert "Defaults: lr=0.0001, betas=(0.9, 0.99), weight_decay=0.1." in doc
    for arg in ("lr:", "betas:", "weight_decay:", "maximize:", "foreach:", "state_dtype:"):
        assert arg in Lion.__doc__
    generic = sys.modules[exported("program4").__module__].__doc__
    assert "c0" in generic and "cosh" not in generic, "dead statements are not shown"


def test_adam_program_matches_torch_adam():
    """The bias-corrected Adam program (step counter slot) is torch.optim.Adam(lr=1e-3)."""
    params, theirs = make_params(), make_params()
    opt = exported("adam")(params)
    got = run(opt, params, 20)
    want = run(torch.optim.Adam(theirs, lr=1e-3, betas=(0.9, 0.999), eps=1e-8), theirs, 20)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # The counter is uniform over elements: it is kept as one 0-d tensor per parameter.
    assert opt.state[params[0]]["t"].shape == () and opt.state[params[0]]["t"].item() == 20
    # With bf16 state the counter stays float32 (a bf16 counter would stop at 256).
    bf16 = exported("adam")(params, state_dtype=torch.bfloat16)
    run(bf16, params, 1)
    assert bf16.state[params[0]]["m"].dtype == torch.bfloat16
    assert bf16.state[params[0]]["t"].dtype == torch.float32


ADAMW_BIAS_CORRECTED = """def train(w, g, m, v, t, lr):
    t = t + 1.0
    m = interp(g, m, 0.9)
    g2 = square(g)
    v = interp(g2, v, 0.999)
    b1t = power(0.9, t)
    bc1 = 1.0 - b1t
    b2t = power(0.999, t)
    bc2 = 1.0 - b2t
    m_hat = m / bc1
    v_hat = v / bc2
    denom = sqrt(v_hat)
    update = m_hat / denom
    wd = w * 0.01
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, m, v, t
"""


@pytest.mark.parametrize("foreach", [False, True])
def test_adamw_program_with_torchs_terms_matches_torch_adamw(foreach):
    """AdamW with the terms torch.optim.AdamW has (bias correction, decoupled decay): the
    exported optimizer is torch.optim.AdamW(lr=1e-3, weight_decay=0.01), on both paths; the
    search's AdamW (no bias correction) is not, and the test would notice."""
    from optsearch.primitives import parse

    cls = load_class(export_source(parse(ADAMW_BIAS_CORRECTED)), "DiscoveredOptimizer")
    params, theirs = make_params(), make_params()
    got = run(cls(params, foreach=foreach), params, 20)
    torch_adamw = torch.optim.AdamW(theirs, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                    weight_decay=0.01)
    want = run(torch_adamw, theirs, 20)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    plain = make_params()
    without_bias_correction = run(exported("adamw")(plain), plain, 20)
    assert not torch.allclose(without_bias_correction[0], want[0], rtol=1e-5, atol=1e-6)


def test_sgdm_program_matches_torch_sgd_momentum():
    params, theirs = make_params(), make_params()
    got = run(exported("sgdm")(params), params, 20)
    want = run(torch.optim.SGD(theirs, lr=0.01, momentum=0.9), theirs, 20)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


EXOTIC = {
    # reductions are per parameter tensor; a slot written from a reduction stays uniform (0-d)
    "reductions": """def train(w, g, m, s, lr):
    n = norm(g)
    u = g / n
    m = interp(u, m, 0.9)
    c = cosine_sim(m, g)
    a = mean(g)
    s = s + a
    d = dot(g, m)
    u = m * c
    u = u + s
    u = u * d
    u = clip_by_norm(u, 0.5)
    lr = lr * 0.01
    u = u * lr
    return u, m, s
""",
    # scalar arguments where torch wants tensors, scalar-only statements, the lr input in calls
    "scalars": """def train(w, g, m, lr):
    x = max(g, 0.1)
    y = power(g, 1.5)
    z = exp2(0.5)
    k = sqrt(lr)
    u = interp(g, 0.3, 0.25)
    u = u - x
    u = u + y
    u = u * z
    m = interp(m, u, 0.8)
    q = clip(m, k)
    q = arctanh(q)
    q = 2.0 - q
    update = q * 0.001
    return update, m
""",
    # new m comes from old v and new v from old m: the in-place buffers form a cycle
    "swap": """def train(w, g, m, v, lr):
    a = v * 0.5
    b = m * 0.5
    u = g + a
    u = u + b
    a = a + g
    u = u * 0.01
    return u, a, b
""",
    # a slot that stores the weight itself must see it before the update
    "weight_slot": """def train(w, g, m, lr):
    d = w - m
    u = g + d
    u = u * 0.01
    return u, w
""",
}


@pytest.mark.parametrize("name", sorted(EXOTIC))
def test_unusual_programs_match_their_compiled_rule(name):
    """Reductions, uniform slots, scalar arguments and buffer cycles: both paths follow the
    program."""
    from optsearch.primitives import parse

    program = parse(EXOTIC[name])
    cls = load_class(export_source(program), "DiscoveredOptimizer")
    results = []
    for foreach in (False, True):
        params = make_params()
        results.append(run(cls(params, foreach=foreach), params, 6))
    rule = compile_program(program)
    params = [p.detach().clone() for p in make_params()]
    states = [tuple(torch.zeros_like(p) for _ in range(program.n_slots)) for p in params]
    for t in range(6):
        for i, g in enumerate(grads_for(params, t)):
            update, states[i] = rule(params[i], g, states[i], 1.0)
            params[i] = params[i] - update
    for single, fe, want in zip(*results, params):
        torch.testing.assert_close(single, fe, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(single, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_recognised_export_with_defaults_reproduces_the_program(name):
    """Contract with search.recognize: the named class, built with its defaults, follows the
    program it was recognised in (at schedule value 1)."""
    recognize = pytest.importorskip("optsearch.search.distill.recognize").recognize
    program = load_reference(name)
    recognition = recognize(program)
    cls = load_class(export_source(program, "Exported", recognition), "Exported")
    params = make_params()
    got = run(cls(params), params, 6)
    rule = compile_program(program)
    want = [p.detach().clone() for p in make_params()]
    states = [tuple(torch.zeros_like(p) for _ in range(program.n_slots)) for p in want]
    for t in range(6):
        for i, g in enumerate(grads_for(want, t)):
            update, states[i] = rule(want[i], g, states[i], 1.0)
            want[i] = want[i] - update
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_program4_exports_with_one_state_buffer():
    """The paper's raw program: its dead slot and dead statement cost nothing."""
    source = export_source(load_reference("program4"))
    assert "cosh" not in source.split('"""', 2)[2]  # the dead statement is not generated
    params = make_params()
    opt = load_class(source, "DiscoveredOptimizer")(params)
    run(opt, params, 3)
    assert all(list(opt.state[p]) == ["v"] for p in params)


@pytest.mark.parametrize("name", ["adamw", "adam", "lion", "adabelief", "rmsprop"])
def test_docstring_equations_are_the_algebra_of_the_program(name):
    """The docstring's equations come from the same program -> sympy conversion as simplify and
    recognise (`symbolic.to_sympy`): with every numbered hyperparameter at its default, each
    shown equation takes to_sympy's value at random points."""
    import re

    import sympy

    from optsearch.primitives.symbolic import to_sympy

    program = load_reference(name)
    doc = ast.get_docstring(ast.parse(export_source(program)))
    defaults = dict(item.split("=") for item in
                    re.search(r"^Defaults: (.*)\.$", doc, re.MULTILINE).group(1).split(", "))
    equations = doc[doc.index("Update equations"):doc.index("Defaults:")]
    shown = dict(re.findall(r"^    (\w+) (?:=|<-) (.+)$", equations, re.MULTILINE))
    sym = to_sympy(program)
    expected = {"update": sym.update, **{program.slots[k]: e for k, e in sym.states.items()}}
    assert set(shown) - {program.weight} == set(expected)
    rng = torch.Generator().manual_seed(0)
    for _ in range(3):
        point = {n: float(torch.randn((), generator=rng)) for n in program.params}
        point[program.lr] = abs(point[program.lr])
        names = {n: sympy.Symbol(n) for n in [*program.params, *defaults]}
        at = {names[n]: v for n, v in point.items()} | {names[c]: float(v)
                                                       for c, v in defaults.items() if c != "lr"}
        for key, expr in expected.items():
            doc_value = sympy.sympify(shown[key], locals=names).subs(at)
            program_value = expr.subs({sym.symbols[n]: v for n, v in point.items()})
            assert float(doc_value) == pytest.approx(float(program_value), rel=1e-9), key


# ----------------------------------------------------------------------------- optimizer API

@pytest.mark.parametrize("program, foreach, state_dtype", [
    ("lion", False, None), ("lion", True, None), ("lion", False, torch.bfloat16),
    ("adam", False, None), ("adam", True, None),  # adam: a uniform (0-d) step-counter slot
])
def test_state_dict_round_trip_reproduces_the_trajectory(program, foreach, state_dtype):
    """Save after 5 steps, load into a fresh optimizer over copies of the parameters: the next
    5 steps are bit-identical to continuing without the round trip."""
    if program == "lion":
        recognition = lion_recognition()
        cls = load_class(export_source(load_reference("lion"), "Lion", recognition), "Lion")
        hp = {"lr": 1e-3}
    else:
        cls, hp = exported(program), {}
    params = make_params()
    opt = cls(params, **hp, foreach=foreach, state_dtype=state_dtype)
    run(opt, params, 5)
    saved_params = [p.detach().clone() for p in params]
    saved = copy.deepcopy(opt.state_dict())
    straight = run(opt, params, 5, start=5)
    resumed_params = [p.clone().requires_grad_() for p in saved_params]
    resumed = cls(resumed_params, **hp, foreach=foreach, state_dtype=state_dtype)
    resumed.load_state_dict(saved)
    again = run(resumed, resumed_params, 5, start=5)
    assert all(torch.equal(a, b) for a, b in zip(straight, again))
    for p, q in zip(params, resumed_params):
        for key in opt.state[p]:
            assert torch.equal(opt.state[p][key], resumed.state[q][key])
            assert opt.state[p][key].dtype == resumed.state[q][key].dtype


def test_cosine_schedule_drives_the_real_learning_rate(Lion):
    """With recognised Lion, `lr` is the learning rate a scheduler changes."""
    params = make_params(shapes=[(40, 20)])
    opt = Lion(params, lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    lrs = []
    for t in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        got = run(opt, params, 1, start=t)
        sched.step()
    assert lrs[0] == 1e-3 and lrs[-1] < 1e-4
    want = lion_reference(make_params(shapes=[(40, 20)]), 10, lrs=lrs)
    assert_lion_close(got, want, 1e-3, 10)


def test_other_schedulers_warmup_then_cosine_and_step_decay(Lion):
    """SequentialLR(LinearLR warm-up, CosineAnnealingLR) on named Lion; StepLR on a generic
    export, where `lr` multiplies the discovered schedule value (peak 1e-4)."""
    params = make_params(shapes=[(40, 20)])
    opt = Lion(params, lr=1e-3)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7)], milestones=[3])
    lrs = []
    for t in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        got = run(opt, params, 1, start=t)
        sched.step()
    assert lrs[0] < lrs[3] and max(lrs) == pytest.approx(1e-3)
    assert_lion_close(got, lion_reference(make_params(shapes=[(40, 20)]), 10, lrs=lrs), 1e-3, 10)
    generic = exported("lion")
    params = make_params(shapes=[(40, 20)])
    opt = generic(params)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    multipliers = []
    for t in range(6):
        multipliers.append(opt.param_groups[0]["lr"])
        got = run(opt, params, 1, start=t)
        sched.step()
    assert multipliers == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    want = lion_reference(make_params(shapes=[(40, 20)]), 6, lrs=[1e-4 * m for m in multipliers])
    assert_lion_close(got, want, 1e-4, 6)


def test_param_groups_keep_their_own_learning_rates(Lion):
    """Each group follows Lion with its own lr (and its own weight decay), as if alone."""
    a, b = make_params(seed=1), make_params(seed=2)
    opt = Lion([{"params": a, "lr": 1e-2}, {"params": b, "weight_decay": 0.5}], lr=1e-3)
    assert opt.param_groups[0]["lr"] == 1e-2 and opt.param_groups[1]["lr"] == 1e-3
    assert opt.param_groups[1]["weight_decay"] == 0.5 and opt.param_groups[0]["weight_decay"] == 0.1
    got = run(opt, a + b, 4)
    alone_a, alone_b = make_params(seed=1), make_params(seed=2)
    want = run(Lion(alone_a + alone_b, lr=1e-2), alone_a + alone_b, 4)[:len(a)]
    alone_a, alone_b = make_params(seed=1), make_params(seed=2)
    want += run(Lion(alone_a + alone_b, lr=1e-3, weight_decay=0.5), alone_a + alone_b, 4)[len(a):]
    assert all(torch.equal(x, y) for x, y in zip(got, want))


def test_maximize_follows_the_negated_gradient_and_never_touches_p_grad(Lion):
    for foreach in (False, True):
        params = make_params()
        opt = Lion(params, lr=1e-3, maximize=True, foreach=foreach)
        grads = grads_for(params, 0)
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        assert all(torch.equal(p.grad, g) for p, g in zip(params, grads)), "p.grad mutated"
        negated = make_params()
        opt2 = Lion(negated, lr=1e-3, foreach=foreach)
        for p, g in zip(negated, grads):
            p.grad = -g
        opt2.step()
        assert all(torch.equal(p, q) for p, q in zip(params, negated))


def test_closure_is_called_and_its_loss_returned(Lion):
    w = torch.nn.Parameter(torch.ones(5))
    opt = Lion([w], lr=0.1, weight_decay=0.0)

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 5.0
    torch.testing.assert_close(w.detach(), torch.full((5,), 0.9))


@pytest.mark.parametrize("foreach", [False, True])
def test_sign_of_zero_is_zero(Lion, foreach):
    """A zero gradient with zero momentum moves nothing but the weight decay; elements with a
    zero gradient stay still next to ones that move."""
    params = make_params()
    before = [p.detach().clone() for p in params]
    opt = Lion(params, lr=1e-2, weight_decay=0.5, foreach=foreach)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    for p, b in zip(params, before):
        torch.testing.assert_close(p.detach(), b * (1 - 1e-2 * 0.5))
    w = torch.nn.Parameter(torch.ones(4))
    opt = Lion([w], lr=1e-2, weight_decay=0.0, foreach=foreach)
    w.grad = torch.tensor([0.0, 1.0, -1.0, 0.0])
    opt.step()
    assert w.detach().tolist() == pytest.approx([1.0, 0.99, 1.01, 1.0])


def test_bf16_state_dtype_keeps_bf16_buffers_through_a_round_trip(Lion):
    params, ref = make_params(), make_params()
    opt = Lion(params, lr=1e-3, state_dtype=torch.bfloat16)
    got = run(opt, params, 10)
    assert all(opt.state[p]["m"].dtype == torch.bfloat16 for p in params)
    want = run(Lion(ref, lr=1e-3), ref, 10)
    assert_lion_close(got, want, 1e-3, 10, allowed_flips=0.05)
    state = copy.deepcopy(opt.state_dict())
    fresh = Lion([p.detach().clone().requires_grad_() for p in params], lr=1e-3,
                 state_dtype=torch.bfloat16)
    fresh.load_state_dict(state)
    assert all(s["m"].dtype == torch.bfloat16 for s in fresh.state.values())


def test_hyperparameters_are_validated(Lion):
    p = make_params()
    for bad in ({"lr": -1.0}, {"betas": (1.5, 0.99)}, {"betas": (0.9,)},
                {"weight_decay": -0.1}, {"lr": float("nan")}, {"foreach": "yes"},
                {"state_dtype": torch.int32}):
        with pytest.raises(ValueError):
            Lion(p, **bad)
    opt = Lion(p)
    with pytest.raises(ValueError):
        opt.add_param_group({"params": make_params(seed=3), "betas": (0.9, 2.0)})
    with pytest.raises(ValueError):
        opt.add_param_group({"params": make_params(seed=4), "lr": -1e-3})
    with pytest.raises(ValueError):
        Lion(p, lr=torch.tensor([1e-3, 1e-3]))
    with pytest.raises(ValueError):
        Lion([torch.zeros(3, dtype=torch.int64)])
    generic = exported("adamw")
    for bad in ({"c0": float("inf")}, {"c1": "0.9"}, {"lr": -1.0}, {"maximize": 1}):
        with pytest.raises(ValueError):
            generic(make_params(), **bad)
    for name in ("not valid", "import", "_Private", "torch"):
        with pytest.raises(ValueError):
            export_source(load_reference("lion"), class_name=name)


def test_generic_export_names_constants_and_scales_the_schedule():
    """Unrecognised: constants become c0, c1, ...; lr multiplies the program's lr input."""
    cls = exported("lion")
    params, ref = make_params(), make_params()
    opt = cls(params, lr=0.5)
    assert opt.defaults["c3"] == 0.0001 and opt.defaults["c0"] == 0.9
    got = run(opt, params, 5)
    want = lion_reference(ref, 5, lr=0.5 * 1e-4)
    assert_lion_close(got, want, 0.5 * 1e-4, 5)


def test_generated_code_comes_from_the_checked_model_only():
    """A Program built in code (not parsed) gets the parser's checks: identifiers, pool names,
    arities and finite constants; recognised hyperparameter names and values are checked too.
    Nothing it holds can reach the file as code."""
    from optsearch.primitives.program import Program, Statement

    def program(slot="m", op="sign", const=0.1, args=None):
        stmts = (Statement("u", op, args or ("g",)), Statement("u", "mul", ("u", const)))
        return Program(("w", "g", slot, "lr"), stmts, ("u", slot))

    assert "class DiscoveredOptimizer" in export_source(program())
    for bad in (program(slot='m"""\nimport os\n"""'), program(slot="m.x"), program(slot="def"),
                program(slot="m\u00e9"), program(op="system"), program(args=("g", "g")),
                program(const=float("inf")), program(const=float("nan")), program(const=True),
                Program(("w", "g", "lr"), program().statements, ("u", "m"))):
        with pytest.raises(ValueError):
            export_source(bad)
    for name, value in (("import", 0.9), ("params", 0.9), ("beta 1", 0.9), ("beta1", math.inf)):
        rec = lion_recognition(**{name: value})
        rec.bindings = {**rec.bindings, (0, 2): name}
        with pytest.raises(ValueError):
            export_source(load_reference("lion"), "Lion", rec)
    # A recogniser's name is shown in the docstring only, escaped: the file still parses.
    rec = lion_recognition()
    rec.name = 'Lion"""; import os; """'
    source = export_source(load_reference("lion"), "Lion", rec)
    tree = ast.parse(source)
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import)
                and any(a.name == "os" for a in n.names)]
    assert rec.name in ast.get_docstring(tree)


def test_recognised_programs_get_named_hyperparameters_through_the_cli(tmp_path):
    """`optsearch export lion|adamw|sgdm` (the real recogniser): torch.optim-style names whose
    defaults are the program's values, and lr is the real learning rate."""
    import inspect

    from optsearch.cli.main import main

    want = {"lion": ("Lion", {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.1}),
            "adamw": ("AdamW", {"lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.01}),
            "sgdm": ("SGDM", {"lr": 0.01, "momentum": 0.9})}
    for name, (class_name, hp) in want.items():
        out = tmp_path / f"{name}.py"
        assert main(["export", name, "-o", str(out)]) == 0
        cls = load_class(out.read_text(), class_name)
        signature = inspect.signature(cls.__init__).parameters
        for key, value in hp.items():
            assert signature[key].default == pytest.approx(value), (name, key)
        assert not any(k.startswith("c") and k[1:].isdigit() for k in signature)
    params, ref = make_params(), make_params()
    got = run(cls(params, lr=0.05), params, 5)  # SGDM at a learning rate of our choosing
    want = run(torch.optim.SGD(ref, lr=0.05, momentum=0.9), ref, 5)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("native, expect", [((), "single"), (("cpu",), "foreach")])
def test_foreach_is_the_default_where_native_kernels_exist(native, expect, monkeypatch):
    """foreach=None picks the torch._foreach_* path on devices with native multi-tensor
    kernels (CUDA, XPU; here CPU pretends to be one) and the single-tensor path elsewhere;
    foreach=True / False force it."""
    cls = load_class(export_source(load_reference("lion"), "Lion", lion_recognition()), "Lion")
    module = sys.modules[cls.__module__]
    monkeypatch.setattr(module, "_NATIVE_FOREACH", native)
    calls = []
    for path in ("single", "foreach"):
        original = getattr(module, f"_update_{path}")
        monkeypatch.setattr(module, f"_update_{path}",
                            lambda *a, _f=original, _p=path: (calls.append(_p), _f(*a))[1])
    for foreach, want in ((None, expect), (True, "foreach"), (False, "single")):
        calls.clear()
        params = make_params()
        run(cls(params, foreach=foreach), params, 1)
        assert set(calls) == {want}, (foreach, calls)


def test_exported_file_needs_only_torch(tmp_path):
    source = export_source(load_reference("adam"), "Adam2")
    imports = {alias.name for node in ast.walk(ast.parse(source))
               if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in getattr(node, "names", [])}
    assert imports <= {"math", "torch"}
    (tmp_path / "adam2.py").write_text(source)
    code = ("import sys; import adam2, torch; "
            "assert 'primitives' not in sys.modules and 'sympy' not in sys.modules; "
            "w = torch.nn.Parameter(torch.ones(3)); o = adam2.Adam2([w]); "
            "w.grad = torch.ones(3); o.step(); print(w.detach().tolist())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert math.isclose(eval(out.stdout)[0], 1 - 1e-3, rel_tol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("foreach", [None, False, True])
def test_cuda_matches_cpu(Lion, foreach):
    """On CUDA (default there: the foreach path), with a CUDA 0-d tensor lr, Lion follows the
    CPU result; bf16 state stays bf16 on the device."""
    cpu = make_params()
    gpu = [p.detach().cuda().requires_grad_() for p in make_params()]
    got_cpu = run(Lion(cpu, lr=1e-3), cpu, 5)
    opt = Lion(gpu, lr=torch.tensor(1e-3, device="cuda"), foreach=foreach)
    got_gpu = run(opt, gpu, 5)
    assert all(s["m"].is_cuda for s in opt.state.values())
    assert_lion_close(got_cpu, [g.cpu() for g in got_gpu], 1e-3, 5)
    bf16 = [p.detach().cuda().requires_grad_() for p in make_params()]
    opt = Lion(bf16, lr=1e-3, foreach=foreach, state_dtype=torch.bfloat16)
    got_bf16 = run(opt, bf16, 5)
    assert all(s["m"].dtype == torch.bfloat16 and s["m"].is_cuda for s in opt.state.values())
    assert_lion_close(got_cpu, [g.cpu() for g in got_bf16], 1e-3, 5, allowed_flips=0.05)


def test_compiled_step_does_not_recompile_when_a_scheduler_changes_lr(Lion):
    """A 0-d tensor lr is a graph input: the scheduler fills it in place, no recompilation."""
    import torch._dynamo as dynamo

    dynamo.reset()
    params, ref = make_params(shapes=[(8, 4), (5,)]), make_params(shapes=[(8, 4), (5,)])
    opt = Lion(params, lr=torch.tensor(1e-2))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6)
    eager = Lion(ref, lr=torch.tensor(1e-2))
    eager_sched = torch.optim.lr_scheduler.CosineAnnealingLR(eager, T_max=6)
    step = torch.compile(opt.step, backend="aot_eager", fullgraph=False)
    for t in range(6):
        for p, q, g in zip(params, ref, grads_for(params, t)):
            p.grad, q.grad = g, g.clone()
        if t == 2:  # after the first calls (state creation) the graph must be stable
            dynamo.config.error_on_recompile = True
        try:
            step()
        finally:
            dynamo.config.error_on_recompile = False
        eager.step()
        sched.step()
        eager_sched.step()
    assert opt.param_groups[0]["lr"].item() < 1e-2
    for a, b in zip(params, ref):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- CLI

def test_cli_exports_a_file_and_a_run_directory(tmp_path, capsys):
    """A file exports as is; a run directory exports its winner (the run store's)."""
    from optsearch.cli.main import main
    from optsearch.primitives.reference import reference_text
    from optsearch.search.store import RunStore

    out = tmp_path / "opt.py"
    assert main(["export", "lion", "-o", str(out), "--class-name", "MyLion"]) == 0
    cls = load_class(out.read_text(), "MyLion")
    params = make_params()
    run(cls(params), params, 2)
    store = RunStore.create(str(tmp_path / "run"), "")
    with store.transaction():
        store.insert_candidate(id=1, island=0, epoch=0, parent_id=None, mutation="init",
                               detail="", program=reference_text("signum"), structural_hash="h1",
                               fingerprint="f1", status="ok", source="evaluated", aggregate=1.0,
                               proposed_at=0.0)
    store.close()
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "best_opt.py")]) == 0
    assert "class Signum(torch.optim.Optimizer)" in (tmp_path / "best_opt.py").read_text()


def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys):
    from optsearch.cli.main import main

    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert main(["export", str(empty), "-o", str(tmp_path / "x.py")]) == 2
    assert main(["export", "lion", "-o", str(tmp_path / "x.py"), "--class-name", "1x"]) == 2
    bad = tmp_path / "bad.py"
    bad.write_text("def train(w, g, lr):\n    u = foo(g)\n    return u\n")
    assert main(["export", str(bad), "-o", str(tmp_path / "x.py")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert not (tmp_path / "x.py").exists()


def test_a_schedule_variant_is_exported_under_a_name_that_says_so(tmp_path, capsys):
    """Rule: a known rule under a schedule transform (signSGD scaled by sqrt(lr)) is exported
    as `signSGD_sqrt_lr`, not as plain `signSGD`: a user who constructs it gets the sqrt."""
    from optsearch.cli.main import main

    src = tmp_path / "sqrt_signsgd.py"
    src.write_text("def train(w, g, lr):\n    a = sqrt(lr)\n    update = sign(g)\n"
                   "    update = update * a\n    update = update * 0.0115\n    return update\n")
    out = tmp_path / "opt.py"
    assert main(["export", str(src), "-o", str(out)]) == 0
    assert "class signSGD_sqrt_lr (signSGD with a sqrt(lr) schedule)" in capsys.readouterr().out
    load_class(out.read_text(), "signSGD_sqrt_lr")

"""Export contract (DESIGN.md section 8): the generated optimizer file is standalone torch code
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

from primitives.codegen import compile_program
from primitives.export import export_source
from primitives.export_template import FOREACH, FOREACH_INPLACE, INPLACE, SINGLE
from primitives.pool import POOL
from primitives.reference import REFERENCE_NAMES, load_reference

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
    gen = torch.Generator().manual_seed(1000 + step)
    return [scale * torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]


def run(opt, params, steps, start=0, before=None):
    for t in range(start, start + steps):
        if before:
            before(t)
        for p, g in zip(params, grads_for(params, t)):
            p.grad = g
        opt.step()
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


def assert_lion_close(got, want, lr, allowed_flips=0.002):
    """Equal up to float rounding, except rare sign flips where the interpolation is ~0
    (each flip moves an element by 2 lr)."""
    for a, b in zip(got, want):
        off = (a - b).abs() > 1e-6
        assert off.float().mean().item() <= allowed_flips
        assert ((a - b).abs() <= 2 * lr * 30 + 1e-6).all()


def test_exported_lion_matches_the_published_rule_and_lion_pytorch(Lion):
    """Lion exports as Lion(params, lr, betas, weight_decay) and follows the reference rule."""
    lion_pytorch = pytest.importorskip("lion_pytorch")
    steps = 30
    params = make_params(shapes=[(64, 32), (257,)])
    got = run(Lion(params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1), params, steps)
    want = lion_reference(make_params(shapes=[(64, 32), (257,)]), steps, lr=1e-3)
    assert_lion_close(got, want, 1e-3)
    for impl in (lion_pytorch.Lion,):
        other = make_params(shapes=[(64, 32), (257,)])
        theirs = run(impl(other, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1), other, steps)
        assert_lion_close(got, theirs, 1e-3)


def test_lion_defaults_and_state_are_one_buffer_per_parameter(Lion):
    """Defaults are the discovered values; only the live momentum slot is allocated."""
    params = make_params()
    opt = Lion(params)
    assert opt.defaults["lr"] == 1e-4 and opt.defaults["betas"] == (0.9, 0.99)
    assert opt.defaults["weight_decay"] == 0.1
    assert {"maximize", "foreach", "state_dtype"} <= set(opt.defaults)
    run(opt, params, 2)
    for p in params:
        assert list(opt.state[p]) == ["m"] and opt.state[p]["m"].shape == p.shape


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
    from primitives import parse

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
    recognize = pytest.importorskip("search.recognize").recognize
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


# ----------------------------------------------------------------------------- optimizer API

def test_state_dict_round_trip_reproduces_the_trajectory(Lion):
    params = make_params()
    opt = Lion(params, lr=1e-3)
    run(opt, params, 5)
    saved_params = [p.detach().clone() for p in params]
    saved = copy.deepcopy(opt.state_dict())
    straight = run(opt, params, 5, start=5)
    resumed_params = [p.clone().requires_grad_() for p in saved_params]
    resumed = Lion(resumed_params, lr=1e-3)
    resumed.load_state_dict(saved)
    again = run(resumed, resumed_params, 5, start=5)
    assert all(torch.equal(a, b) for a, b in zip(straight, again))


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
    assert_lion_close(got, want, 1e-3)


def test_param_groups_keep_their_own_learning_rates(Lion):
    a, b = make_params(seed=1), make_params(seed=2)
    opt = Lion([{"params": a, "lr": 1e-2}, {"params": b}], lr=1e-3)
    assert opt.param_groups[1]["lr"] == 1e-3
    got = run(opt, a + b, 4)
    alone_a, alone_b = make_params(seed=1), make_params(seed=2)
    both = run(Lion(alone_a + alone_b, lr=1e-2), alone_a + alone_b, 4)
    assert all(torch.equal(x, y) for x, y in zip(got[:len(a)], both[:len(a)]))
    assert not any(torch.equal(x, y) for x, y in zip(got[len(a):], both[len(a):]))


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


def test_sign_of_zero_is_zero(Lion):
    """A zero gradient with zero momentum moves nothing but the weight decay."""
    params = make_params()
    before = [p.detach().clone() for p in params]
    opt = Lion(params, lr=1e-2, weight_decay=0.5)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    for p, b in zip(params, before):
        torch.testing.assert_close(p.detach(), b * (1 - 1e-2 * 0.5))


def test_bf16_state_dtype_keeps_bf16_buffers_through_a_round_trip(Lion):
    params, ref = make_params(), make_params()
    opt = Lion(params, lr=1e-3, state_dtype=torch.bfloat16)
    got = run(opt, params, 10)
    assert all(opt.state[p]["m"].dtype == torch.bfloat16 for p in params)
    want = run(Lion(ref, lr=1e-3), ref, 10)
    assert_lion_close(got, want, 1e-3, allowed_flips=0.05)
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
        export_source(load_reference("lion"), class_name="not valid")
    with pytest.raises(ValueError):
        export_source(load_reference("lion"), class_name="import")


def test_generic_export_names_constants_and_scales_the_schedule():
    """Unrecognised: constants become c0, c1, ...; lr multiplies the program's lr input."""
    cls = exported("lion")
    params, ref = make_params(), make_params()
    opt = cls(params, lr=0.5)
    assert opt.defaults["c3"] == 0.0001 and opt.defaults["c0"] == 0.9
    got = run(opt, params, 5)
    want = lion_reference(ref, 5, lr=0.5 * 1e-4)
    assert_lion_close(got, want, 1e-4)


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
def test_cuda_matches_cpu(Lion):
    cpu = make_params()
    gpu = [p.detach().cuda().requires_grad_() for p in make_params()]
    got_cpu = run(Lion(cpu, lr=1e-3), cpu, 5)
    opt = Lion(gpu, lr=torch.tensor(1e-3, device="cuda"))
    got_gpu = run(opt, gpu, 5)
    assert_lion_close(got_cpu, [g.cpu() for g in got_gpu], 1e-3)


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
    from primitives.reference import reference_text
    from scripts.cli import main

    out = tmp_path / "opt.py"
    assert main(["export", "lion", "-o", str(out), "--class-name", "MyLion"]) == 0
    cls = load_class(out.read_text(), "MyLion")
    params = make_params()
    run(cls(params), params, 2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.py").write_text(reference_text("signum"))
    assert main(["export", str(run_dir), "-o", str(tmp_path / "best_opt.py")]) == 0
    assert "class " in (tmp_path / "best_opt.py").read_text()


def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys):
    from scripts.cli import main

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

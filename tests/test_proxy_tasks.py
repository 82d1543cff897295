"""Rules the proxy tasks must keep; each test names the rule it protects.

All tests use the tiny scale-0 configs so the whole file runs in well under a minute.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from optsearch.evaluator.suites import Suite
from optsearch.proxy_tasks import SUITES, TASK_NAMES, get_task, suite_entries
from optsearch.proxy_tasks.rules import AdamW, Exploding, NoUpdate
from optsearch.proxy_tasks.schedule import warmup_cosine

DATA = {}


def tiny(name, **overrides):
    task = get_task(name, 0, **overrides)
    if name not in DATA:
        DATA[name] = task.load_data()
    return task, DATA[name]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_same_seeds_give_identical_results(name):
    """Determinism: a seed fixes the initialisation and the data order completely."""
    task, data = tiny(name)
    a = task.run(AdamW(lr=1e-2), [0, 1], data)
    b = task.run(AdamW(lr=1e-2), [0, 1], data)
    assert a.status == b.status == "ok"
    assert a.metric == b.metric
    assert a.metric[0] != a.metric[1]   # different seeds really are different runs


@pytest.mark.parametrize("name", TASK_NAMES)
def test_batched_seeds_match_each_seed_alone(name):
    """Vectorised seeds: training K seeds stacked equals training each seed by itself."""
    task, data = tiny(name)
    seeds = [3, 0, 7]
    together = task.run(AdamW(lr=1e-2), seeds, data).metric
    alone = [task.run(AdamW(lr=1e-2), [s], data).metric[0] for s in seeds]
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_rule_sees_stacked_parameters():
    """Protocol: every tensor handed to the rule has the leading seed dimension K."""
    shapes = []

    class Spy(AdamW):
        def __call__(self, w, g, state, lr):
            shapes.append((w.shape, g.shape, tuple(s.shape for s in state), float(lr)))
            return super().__call__(w, g, state, lr)

    task, data = tiny("digits_mlp")
    task.run(Spy(), [0, 1, 2, 3], data)
    assert shapes and all(w[0] == 4 and w == g and all(s == w for s in st)
                          for w, g, st, _ in shapes)
    assert max(lr for *_, lr in shapes) == pytest.approx(1.0)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_divergence_stops_early_with_finite_metric(name):
    """Failures are values: an exploding rule gives status 'diverged' and a finite metric."""
    task, data = tiny(name)
    res = task.run(Exploding(), [0, 1], data)
    assert res.status == "diverged"
    assert res.steps < task.config.steps
    assert all(math.isfinite(m) for m in res.metric) and len(res.metric) == 2


def test_nan_update_is_divergence():
    """NaN/Inf in the weights must never leak out as a NaN metric."""
    class NaNRule(NoUpdate):
        def __call__(self, w, g, state, lr):
            return torch.full_like(w, float("nan")), ()

    task, data = tiny("digits_mlp")
    res = task.run(NaNRule(), [0], data)
    assert res.status == "diverged" and math.isfinite(res.metric[0])


def test_time_limit_is_honoured():
    """A wall-time limit stops a long run promptly with status 'timeout'."""
    task, data = tiny("digits_mlp", steps=10**7)
    res = task.run(AdamW(), [0, 1], data, time_limit_s=0.3)
    assert res.status == "timeout"
    assert res.seconds < 2.0 and 0 < res.steps < 10**7
    assert all(math.isfinite(m) for m in res.metric)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_data_is_offline_and_deterministic(name):
    """Data loads without network and is identical on every call (it keys the cache)."""
    task = get_task(name, 0)
    a, b = task.load_data(), get_task(name, 0).load_data()
    assert a.keys() == b.keys()
    for key in a:
        assert isinstance(a[key], np.ndarray)
        np.testing.assert_array_equal(a[key], b[key])


def test_suite_version_is_stable_and_tracks_configs():
    """A suite's version is a pure function of configs + data; configs change the task hash."""
    assert Suite.named("test").version == Suite.named("test").version
    for suite in SUITES:
        assert len(Suite.named(suite).version) == 16
        for name, scale, overrides in suite_entries(suite):
            get_task(name, scale, **overrides)
    a = get_task("digits_mlp", 0)
    b = get_task("digits_mlp", 0, steps=31)
    assert a.fingerprint() != b.fingerprint()


@pytest.mark.parametrize("name", TASK_NAMES)
def test_adamw_beats_no_update(name):
    """A sensible rule improves the metric over leaving the weights untouched."""
    task, data = tiny(name)
    trained = np.mean(task.run(AdamW(lr=1e-2), [0, 1], data).metric)
    untouched = np.mean(task.run(NoUpdate(), [0, 1], data).metric)
    assert task.lower_is_better and trained < untouched


def test_schedule_warms_up_then_decays_to_zero():
    """The schedule (part of the task) peaks at 1.0 after warm-up and ends near 0."""
    values = [warmup_cosine(s, 100, 10) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert max(values) == pytest.approx(1.0) and values[-1] < 0.01
    assert all(a >= b for a, b in itertools.pairwise(values[9:]))


def test_scales_exist_for_meta_validation():
    """Every task offers the search scale 1 and the 10x / 100x meta-validation scales."""
    for name in TASK_NAMES:
        for scale in (0, 1, 10, 100):
            assert get_task(name, scale).scale == scale
    with pytest.raises(KeyError):
        get_task("digits_mlp", 7)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_fitness_metric_is_positive(name):
    """Fitness is a ratio to AdamW's metric, so a task's fitness metric must be > 0: a negative
    one (e.g. -PSNR) would be floored and give every program the same score."""
    task, data = tiny(name)
    result = task.run(AdamW(lr=1e-2), [0, 1], data)
    assert result.status == "ok" and all(m > 0 for m in result.metric)
    assert task.config.failure_metric > 0


def test_a_named_suite_entry_may_override_task_config(monkeypatch):
    """An override changes the task, its key and the suite version (so cached fitness never
    crosses configs), and the meta-validation suite keeps it at the larger scale."""
    from optsearch.search.distill.funnel import stage_suite

    monkeypatch.setitem(SUITES, "over_t", [("digits_mlp", 0)])
    plain = Suite.named("over_t").version
    monkeypatch.setitem(SUITES, "over_t", [("digits_mlp", 0, {"steps": 7})])
    suite = Suite.named("over_t")
    assert list(suite.tasks) == ["digits_mlp@0,steps=7"]
    assert suite.tasks["digits_mlp@0,steps=7"].config.steps == 7
    assert Suite.named("over_t").version != plain
    meta = stage_suite("over_t", 10)
    assert meta.tasks["digits_mlp@10,steps=7"].config.steps == 7


def test_a_code_revision_changes_the_suite_version(monkeypatch):
    """A task whose code changed its results carries a new revision, and the suite version
    (which keys the fitness cache and the cached baselines) changes with it."""
    from optsearch.proxy_tasks.teacher_student import TeacherStudent

    monkeypatch.setitem(SUITES, "rev_t", [("teacher_student", 0)])
    before = Suite.named("rev_t").version
    monkeypatch.setattr(TeacherStudent, "revision", TeacherStudent.revision + 1)
    from optsearch.evaluator import suites
    suites._task_hash.cache_clear()
    assert Suite.named("rev_t").version != before
    suites._task_hash.cache_clear()


def test_stacked_cross_entropy_is_the_plain_per_seed_cross_entropy():
    """layers.cross_entropy moves the classes to dim 1 for speed; the values and gradients
    must still be each seed's mean cross-entropy over its rows."""
    from optsearch.proxy_tasks import layers

    logits = torch.randn(3, 5, 7, 11, requires_grad=True)
    targets = torch.randint(0, 11, (3, 5, 7))
    ours = layers.cross_entropy(logits, targets)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    plain = torch.stack([torch.nn.functional.cross_entropy(logits[k].reshape(-1, 11),
                                                           targets[k].reshape(-1))
                         for k in range(3)])
    (g_plain,) = torch.autograd.grad(plain.sum(), logits)
    torch.testing.assert_close(ours, plain)
    torch.testing.assert_close(g_ours, g_plain)


@pytest.mark.parametrize("teacher_bias", [0.0, 0.5])
def test_teacher_student_labels_follow_the_teacher(teacher_bias):
    """The stream's labels are draws from the teacher's softmax: over many batches the label
    frequencies match the mean teacher probability of the drawn inputs (with hidden biases
    too: the torch stream and the numpy teacher must compute the same function)."""
    from optsearch.proxy_tasks.teacher_student import teacher_probs

    task = get_task("teacher_student", 0, teacher_bias=teacher_bias)
    data = task.load_data()
    tensors = {k: torch.as_tensor(v) for k, v in data.items()}
    next_batch = task.batches([0, 1], tensors, "cpu")
    xs, ys = zip(*(next_batch() for _ in range(400)))
    x, y = torch.stack(xs).reshape(-1, task.config.d_in), torch.stack(ys).reshape(-1)
    expected = teacher_probs(data, x.numpy()).mean(axis=0)
    observed = np.bincount(y.numpy(), minlength=task.config.classes) / len(y)
    # 12,800 draws: the standard error of each frequency is <= 0.0045
    np.testing.assert_allclose(observed, expected, atol=0.02)
    assert x.std().item() == pytest.approx(1.0, abs=0.02)


def test_teacher_biases_leave_the_teacher_weights_alone():
    """The biases come from their own generator: a biased teacher has the same weights as the
    bias-free one (so the two suites differ only in the biases), and bias 0 means none."""
    from optsearch.proxy_tasks.teacher_student import TeacherStudentConfig, teacher

    plain, biased = teacher(TeacherStudentConfig()), teacher(TeacherStudentConfig(teacher_bias=0.5))
    assert not plain["t_b1"].any()
    np.testing.assert_array_equal(plain["t_w1"], biased["t_w1"])
    assert biased["t_b1"].mean() > 0.25          # mean 0.5, s.d. 0.5 over 16 units


def test_a_bias_free_student_has_no_hidden_biases_and_still_learns():
    """student_bias=False drops the hidden layers' biases (the output layer keeps its own), and
    the student still trains: there is nothing left for a bias-centring rule to act on."""
    task, data = tiny("teacher_student", student_bias=False)
    params = task.init_params([0, 1], "cpu")
    assert "fc0.b" not in params and "fc0.w" in params and "out.b" in params
    trained = np.mean(task.run(AdamW(lr=1e-2), [0, 1], data).metric)
    untouched = np.mean(task.run(NoUpdate(), [0, 1], data).metric)
    assert trained < untouched


def test_boolean_overrides_parse_as_booleans():
    """`student_bias=False` on a command line must mean False: the string "False" is truthy."""
    from scripts.research.calibrate import parse_overrides

    assert parse_overrides(["student_bias=False", "b=false", "n=3", "h=[8,4]"]) == {
        "student_bias": False, "b": False, "n": 3, "h": (8, 4)}


def test_bias_corrected_adamw_is_torch_adamw():
    """The calibration's `adamwbc` rule is torch.optim.AdamW step for step (bias correction,
    eps after the square root, decoupled weight decay), so 'tuned AdamW' can mean what users run."""
    from optsearch.proxy_tasks.rules import AdamWBiasCorrected

    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    grads = [torch.randn(3, 5, generator=gen, dtype=torch.float64) for _ in range(6)]
    ref = w0.clone().requires_grad_()
    opt = torch.optim.AdamW([ref], lr=0.01, betas=(0.9, 0.99), weight_decay=0.1, eps=1e-8)
    rule, w = AdamWBiasCorrected(lr=0.01, beta2=0.99, wd=0.1), w0.clone()
    state = tuple(torch.zeros_like(w) for _ in range(rule.n_slots))
    for g in grads:
        ref.grad = g.clone()
        opt.step()
        update, state = rule(w, g, state, 1.0)
        w = w - update
    torch.testing.assert_close(w, ref.detach())


def test_rotated_quadratic_lives_in_its_orthonormal_basis():
    """rotate=True: the basis is orthonormal, the loss is 0.5 d^T Q H Q^T d (d = w - target)
    and its gradient is Q H Q^T d plus rotated noise; the axis-aligned task is unchanged."""
    task = get_task("noisy_quadratic", 0, rotate=True, scale_spread=0.0, noise_scale=0.0)
    data = {k: torch.as_tensor(v) for k, v in task.load_data().items()}
    q, h, t = data["basis"], data["h"], data["target"]
    torch.testing.assert_close(q.T @ q, torch.eye(len(h)), atol=1e-5, rtol=0)
    w = torch.randn(2, len(h)).requires_grad_()
    batch = task.batches([0, 1], data, "cpu")()
    task.loss({"w": w}, batch).sum().backward()
    hessian = q @ torch.diag(h) @ q.T
    torch.testing.assert_close(w.grad, (w.detach() - t) @ hessian, atol=1e-5, rtol=1e-4)
    assert "basis" not in get_task("noisy_quadratic", 0).load_data()


def test_observe_sees_every_step_and_changes_nothing():
    """run(observe=f) calls f after each of the task's steps, and watching does not change
    the result (diagnostics read the training without a second copy of its loop)."""
    task, data = tiny("digits_mlp")
    steps = []
    watched = task.run(AdamW(lr=1e-2), [0, 1], data, observe=lambda step, p: steps.append(step))
    assert steps == list(range(task.config.steps))
    assert watched.metric == task.run(AdamW(lr=1e-2), [0, 1], data).metric

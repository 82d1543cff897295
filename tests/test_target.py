"""Target mode: imitation fitness, target resolution, the --target CLI and its bad inputs."""

from __future__ import annotations

import os

import pytest
import torch

from optsearch.cli.main import main
from optsearch.evaluator import backends
from optsearch.evaluator.heap import release_free_memory
from optsearch.evaluator.imitation import (
    SCALE_WEIGHT,
    StreamSpec,
    imitation_fitness,
    proposed_updates,
    record_stream,
    relative_update_error,
    step_errors,
)
from optsearch.evaluator.targets import TargetError, TorchTarget, resolve_target
from optsearch.primitives.codegen import compile_program
from optsearch.primitives.parser import parse
from optsearch.primitives.reference import load_reference, reference_text
from optsearch.search.config import Config
from optsearch.search.driver import start_run

SMALL = StreamSpec(steps=30)  # a test-sized stream: same task, fewer steps
LION = reference_text("lion")


@pytest.fixture(scope="module")
def lion_stream():
    return record_stream(resolve_target("lion"), SMALL)


def _error(text: str, stream) -> float:
    return imitation_fitness(text, stream).tasks["imitation"].metric_mean


def test_exact_imitation_scores_one_and_doing_nothing_scores_half(lion_stream):
    """The score is 1 / (1 + r): r = 0 for the target itself, r = 1 for a zero update."""
    assert imitation_fitness(LION, lion_stream).aggregate == 1.0
    nothing = "def train(w, g, lr):\n    update = g * 0.0\n    return update\n"
    fitness = imitation_fitness(nothing, lion_stream)
    assert fitness.status == "ok" and fitness.aggregate == pytest.approx(0.5)


def test_teacher_forcing_a_wrong_step_size_does_not_compound(lion_stream):
    """The candidate runs on the target's weights, so a 2x step size is an error of exactly
    (2 - 1)^2 = 1 at every step -- it does not grow along a diverging trajectory."""
    doubled = parse(LION.replace("lr * 0.0001", "lr * 0.0002"))
    proposed = proposed_updates(compile_program(doubled, batch_dims=1), lion_stream)
    errors = step_errors(proposed, lion_stream)
    assert torch.allclose(errors, torch.ones_like(errors))
    # the score takes the step size apart: r = SCALE_WEIGHT * |2 - 1|
    assert imitation_fitness(doubled, lion_stream).tasks["imitation"].metric_mean == \
        pytest.approx(SCALE_WEIGHT)


def test_error_grows_smoothly_as_a_beta_moves_away(lion_stream):
    """Constants can be refined: the error is 0 at the target's beta2 and grows
    monotonically with the distance on either side."""
    errors = [_error(LION.replace("interp(g, m, 0.99)", f"interp(g, m, {b})"), lion_stream)
              for b in (0.96, 0.98, 0.99, 0.995, 0.998)]
    assert errors[2] == 0.0
    assert errors[0] > errors[1] > 0 and 0 < errors[3] < errors[4]


def test_candidates_need_not_share_the_targets_state(lion_stream):
    """AdamW (two slots) is scored against Lion (one): worse than Signum, better than 0."""
    adamw = imitation_fitness(reference_text("adamw"), lion_stream)
    signum = imitation_fitness(reference_text("signum"), lion_stream)
    assert 0 < adamw.aggregate < signum.aggregate < 1


def test_a_diverging_candidate_fails_with_fitness_zero(lion_stream):
    """Non-finite updates are a failure value, like divergence on a proxy task."""
    text = ("def train(w, g, m, lr):\n    m = m + 1000.0\n    m = exp(m)\n"
            "    update = g * m\n    return update, m\n")
    fitness = imitation_fitness(text, lion_stream)
    assert fitness.status == "diverged" and fitness.aggregate == 0.0


def test_a_torch_class_is_observed_as_a_black_box():
    """torch.optim.SGD at its default lr 1e-3, with the schedule multiplying that lr, is the
    program g * lr * 0.001; only its parameter changes are observed."""
    target = resolve_target("torch.optim.SGD")
    assert isinstance(target, TorchTarget)
    stream = record_stream(target, SMALL)
    sgd = parse("def train(w, g, lr):\n    lr = lr * 0.001\n    update = g * lr\n"
                "    return update\n")
    assert relative_update_error(sgd, stream) < 1e-9
    assert resolve_target("torch.optim:NAdam").cls is torch.optim.NAdam


@pytest.mark.parametrize("spec, message", [
    ("nosuch", "unknown target"),
    ("missing.py", "no such program file"),
    ("torch.optim.NoSuchOptimizer", "no torch.optim.Optimizer subclass"),
    ("torch.nn:Linear", "no torch.optim.Optimizer subclass"),
    ("no_such_package_xyz.mod:Opt", "cannot import"),
])
def test_bad_targets_are_one_line_errors(spec, message, tmp_path, capsys):
    """Unknown name, missing file, not an optimizer, unimportable module: exit 2, one line."""
    with pytest.raises(TargetError):
        resolve_target(spec)
    assert main(["search", "--target", spec, "--budget", "2", "--out",
                 str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not os.path.exists(tmp_path / "run")


def test_an_invalid_program_file_is_reported_with_its_line(tmp_path, capsys):
    """A target program file is parsed, never executed: a bad one is `error: FILE:LINE: ...`."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nos.system('touch pwned')\n")
    assert main(["search", "--target", str(bad), "--budget", "2", "--out",
                 str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}:1:") and "\n" not in err
    assert not os.path.exists("pwned")


def test_target_mode_writes_a_normal_run_directory(tmp_path, capsys):
    """`search --target` on a test-sized budget: a run directory that inspect, simplify and
    export read as any other, with the target recorded in its config."""
    run_dir = str(tmp_path / "run")
    assert main(["search", "--target", "signum", "--budget", "25", "--seed", "1",
                 "--out", run_dir, "--quiet"]) == 0
    with open(os.path.join(run_dir, "config.toml")) as fh:
        assert 'target = "signum"' in fh.read()
    assert os.path.isfile(os.path.join(run_dir, "best.py"))
    assert main(["inspect", run_dir, "stats"]) == 0
    assert "evaluated        25" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["simplify", run_dir]) == 0  # ablation judged by the imitation fitness
    assert "measure: imitation of signum" in capsys.readouterr().out
    out = str(tmp_path / "opt.py")
    assert main(["export", run_dir, "-o", out]) == 0
    namespace: dict = {}
    with open(out) as fh:
        exec(compile(fh.read(), out, "exec"), namespace)  # noqa: S102 -- our own export
    assert any(isinstance(v, type) and issubclass(v, torch.optim.Optimizer)
               and v is not torch.optim.Optimizer for v in namespace.values())


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status") or not release_free_memory(),
                    reason="needs Linux with glibc")
def test_a_target_search_does_not_grow_its_process_with_evaluations(tmp_path):
    """A target-mode search evaluates in the driver's process: its evaluations' ~1 MB tensors
    must not pile up in the heap (without trims: ~0.9 MB per evaluation, never returned)."""
    config = Config()
    config.evaluation.target, config.search.budget = "lion", 400
    driver = start_run(str(tmp_path / "r"), config.validate(), load_reference("adamw"))
    rss = {}

    def on_step(d):
        if d.spent in (100, 400) and d.spent not in rss:
            rss[d.spent] = _rss_mb()

    driver.on_step = on_step
    driver.run()
    driver.close()
    assert rss[400] - rss[100] < 60  # MB over 300 evaluations; ~270 without the trims


def test_an_in_process_backend_returns_free_memory_every_release_every_evaluations(
        monkeypatch):
    """The trims come at a fixed count of evaluations, whatever the polls' batching."""
    released = []
    monkeypatch.setattr(backends, "release_free_memory", lambda: released.append(1))

    class Echo(backends.InProcessBackend):
        release_every, worker_name = 10, "echo"

        def evaluate_job(self, program_text, rung):
            return program_text

    backend = Echo()
    for job in range(35):
        backend.submit(job, "x")
        if job % 3 == 0:
            backend.poll()
    backend.poll()
    assert len(released) == 3


def test_the_stream_length_is_configured_and_simplify_measures_on_the_runs_own_stream(tmp_path):
    """Rule: `evaluation.target_steps` sets the recorded stream's length for the search, and
    `simplify RUN_DIR` judges on a stream of that same length (not the default's)."""
    from optsearch.cli.cmd_simplify import run_target
    from optsearch.search.backend import backend_for
    from optsearch.search.config import ConfigError

    config = Config()
    config.evaluation.target, config.evaluation.target_steps = "lion", 30
    backend = backend_for(config.validate().evaluation)
    try:
        assert backend.stream.w.shape[0] == 30
    finally:
        backend.close()
    config.search.budget = 5
    start_run(str(tmp_path / "run"), config, load_reference("adamw")).close()
    assert run_target(str(tmp_path / "run")) == ("lion", 30)
    config.evaluation.target_steps = 5
    with pytest.raises(ConfigError, match="target_steps"):
        config.validate()

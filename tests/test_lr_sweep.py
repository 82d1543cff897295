"""The step-size-marginalised fitness (evaluator.lr_sweep) and its folding into stored programs.

Fast: real training on the tiny "test" suite (digits MLP, 30 steps)."""

import json
import math
import os
import sqlite3

import pytest

from optsearch.evaluator.evaluate import evaluate
from optsearch.evaluator.fitness import Fitness, TaskFitness
from optsearch.evaluator.lr_sweep import select_step, sweep_factors, with_lr_factor
from optsearch.primitives.parser import parse
from optsearch.primitives.reference import load_reference
from optsearch.search.config import Config, ConfigError, from_dict
from optsearch.search.driver import start_run

SEEDS = (0, 1, 2, 3)
# plain SGD whose x16 step diverges on the test task: a sweep must survive a failing group
SGD = parse("def train(w, g, lr):\n    lr = lr * 0.5\n    update = g * lr\n    return update\n")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTSEARCH_CACHE_DIR", str(tmp_path / "cache"))


def test_factors_are_geometric_and_centred_on_one():
    assert sweep_factors(1) == (1.0,)
    assert sweep_factors(5) == (0.0625, 0.25, 1.0, 4.0, 16.0)
    three = sweep_factors(3, spacing=2.0)
    assert three == (0.5, 1.0, 2.0)
    with pytest.raises(ValueError):
        sweep_factors(0)


def _fitness(seed_scores, status="ok"):
    task = TaskFitness.scored([1.0 / s for s in seed_scores], [1.0] * len(seed_scores), True,
                              status, 10, 0.0)
    return Fitness.from_tasks({"t": task}, tuple(range(len(seed_scores))), 0.0)


def test_estimator_chooses_on_the_first_half_and_reports_the_other():
    """No winner's curse: the multiplier is picked on seeds 0,1 only, and the fitness is that
    multiplier's score on seeds 2,3 -- even when another multiplier is better on 2,3."""
    lucky = _fitness([4.0, 4.0, 1.0, 1.0])      # best where it is chosen, poor where reported
    steady = _fitness([2.0, 2.0, 3.0, 3.0])
    chosen = select_step([steady, lucky], (1.0, 4.0))
    assert chosen.lr_factor == 4.0
    assert chosen.aggregate == pytest.approx(1.0)            # seeds 2,3 of `lucky`
    assert chosen.tasks == lucky.tasks                       # every seed's result is kept
    assert "chosen on seeds 0,1, reported on 2,3" in chosen.message


def test_estimator_ties_go_to_the_program_own_step_and_failures_stay_failures():
    failed = _fitness([1.0, 1.0, 1.0, 1.0], status="diverged")
    tied = select_step([failed, failed, failed], (0.25, 1.0, 4.0))
    assert tied.lr_factor == 1.0 and tied.aggregate == 0.0 and tied.status == "diverged"
    # chosen on its first half, but it fails on the second: the fitness is a failure
    half = _fitness([2.0, 2.0, 1.0, 1.0], status="diverged")
    assert select_step([half], (1.0,)).aggregate == 0.0


def test_estimator_needs_two_seeds():
    with pytest.raises(ValueError, match="2 seeds"):
        select_step([_fitness([2.0])], (1.0,))


def test_every_group_of_a_sweep_is_its_scaled_program_run_alone():
    """Groups share the stacked batch but not their numbers: each multiplier's per-seed
    metrics are bit for bit those of the program with that step folded in, evaluated alone
    -- also beside a group that diverges."""
    swept = evaluate(SGD, "test", SEEDS, lr_sweep=5)
    assert swept.ok
    for factor in sweep_factors(5):
        alone = evaluate(with_lr_factor(SGD, factor), "test", SEEDS)
        if factor == swept.lr_factor:
            assert alone.tasks["digits_mlp@0"].per_seed == swept.tasks["digits_mlp@0"].per_seed
            assert alone.seed_aggregates() == swept.seed_aggregates()
        if factor == 16.0:
            assert alone.status == "diverged"   # so the sweep did train beside a failure


def test_sweep_of_one_is_the_plain_evaluation():
    """lr_sweep = 1 changes nothing: same numbers, and no lr_factor in the stored dict."""
    plain = evaluate(load_reference("lion"), "test", SEEDS)
    one = evaluate(load_reference("lion"), "test", SEEDS, lr_sweep=1)
    assert (one.aggregate, one.status, one.lr_factor) == (plain.aggregate, plain.status, 1.0)
    assert one.tasks["digits_mlp@0"].per_seed == plain.tasks["digits_mlp@0"].per_seed
    assert "lr_factor" not in one.to_dict()


def test_sweep_reports_held_out_seeds_of_the_chosen_step():
    swept = evaluate(load_reference("adamw"), "test", SEEDS, lr_sweep=3)
    per_seed = swept.seed_aggregates()
    held_out = math.exp((math.log(per_seed[2]) + math.log(per_seed[3])) / 2)
    assert swept.aggregate == pytest.approx(held_out)


def test_config_rejects_a_sweep_it_cannot_estimate():
    with pytest.raises(ConfigError, match="lr_sweep"):
        from_dict({"evaluation": {"lr_sweep": 0}})
    with pytest.raises(ConfigError, match="seeds >= 2"):
        from_dict({"evaluation": {"lr_sweep": 3, "seeds": 1}})


def test_stored_programs_have_the_chosen_step_folded_in(tmp_path):
    """A search with a sweep stores each program with its chosen multiplier folded into the
    lr constant: re-evaluating the stored text without a sweep reproduces the per-seed
    metrics its fitness came from."""
    config = Config()
    config.search.population_size, config.search.tournament_size = 4, 2
    config.search.budget, config.search.init_lr_factors = 6, "1"
    config.evaluation.backend, config.evaluation.suite = "serial", "test"
    config.evaluation.seeds, config.evaluation.lr_sweep = 2, 3
    run_dir = str(tmp_path / "r")
    driver = start_run(run_dir, config.validate(), load_reference("adamw"))
    driver.run()
    driver.close()
    with sqlite3.connect(os.path.join(run_dir, "run.sqlite")) as conn:
        rows = conn.execute("SELECT program, fitness_json FROM candidates "
                            "WHERE status = 'ok' AND source = 'evaluated'").fetchall()
    folded = [(text, json.loads(fj)) for text, fj in rows if json.loads(fj).get("lr_factor")]
    assert folded, "no candidate chose a step other than its own"
    for text, stored in folded:
        again = evaluate(text, "test", (0, 1))
        assert again.tasks["digits_mlp@0"].per_seed == tuple(
            stored["tasks"]["digits_mlp@0"]["per_seed"])

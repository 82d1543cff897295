"""The standard error every fitness comparison uses (evaluator.noise)."""

import math

import pytest

from optsearch.evaluator.fitness import Fitness, TaskFitness
from optsearch.evaluator.noise import mean_stderr, standard_error


def test_standard_error_is_the_sample_deviation_over_root_n_and_nan_when_unknowable():
    # values 1..4: sample variance 5/3, so s.e. = sqrt(5/3) / 2
    assert standard_error([1.0, 2.0, 3.0, 4.0]) == pytest.approx(math.sqrt(5 / 3) / 2)
    assert math.isnan(standard_error([2.0]))        # one seed: no noise estimate
    assert math.isnan(standard_error([1.0, math.inf]))  # a diverged seed


def test_mean_stderr_reads_the_noise_from_the_per_seed_aggregates():
    task = TaskFitness.scored([0.5, 1.0], [1.0, 1.0], True, "ok", 10, 0.1)  # scores 2 and 1
    fitness = Fitness.from_tasks({"t": task}, seeds=(0, 1), cost_s=0.1)
    mean, err = mean_stderr(fitness)
    assert mean == fitness.aggregate == pytest.approx(math.sqrt(2))
    assert err == pytest.approx(standard_error([2.0, 1.0])) and err == pytest.approx(0.5)


def test_a_measure_scores_a_failed_program_minus_inf_and_one_seed_as_noise_free():
    """The rule every ablation is judged by (evaluator.measure): a program that fails can never
    look as good as the rule it was ablated from, and a single seed does not turn every
    comparison into NaN."""
    from optsearch.evaluator.measure import fitness_measure

    ok = TaskFitness.scored([0.5], [1.0], True, "ok", 10, 0.1)
    one_seed = Fitness.from_tasks({"t": ok}, seeds=(0,), cost_s=0.1)
    bad = TaskFitness.scored([math.inf], [1.0], True, "diverged", 10, 0.1)
    failed = Fitness.from_tasks({"t": bad}, seeds=(0,), cost_s=0.1)
    measure = fitness_measure(lambda p: one_seed if p == "ok" else failed, "suite")
    assert measure("ok") == (pytest.approx(2.0), 0.0) and measure.name == "suite"
    assert measure("bad") == (-math.inf, 0.0)

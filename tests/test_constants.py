"""Constant fitting (search.constants) and the driver's "refine" children in target mode."""

from __future__ import annotations

import math

import pytest
from support import candidate_rows, interrupt_and_resume, kill_inside_a_transaction

from optsearch.evaluator.imitation import imitation_fitness, record_stream
from optsearch.evaluator.targets import resolve_target
from optsearch.primitives.parser import parse
from optsearch.primitives.reference import load_reference
from optsearch.search.config import Config, ConfigError
from optsearch.search.constants import constant_sites, fit_constants
from optsearch.search.distill.recognize import recognize
from optsearch.search.driver import resume_run, start_run

PERTURBED_LION = """def train(w, g, m, lr):
    update = interp(g, m, 0.8)
    update = sign(update)
    m = interp(g, m, 0.95)
    wd = w * 0.3
    update = update + wd
    lr = lr * 0.0003
    update = update * lr
    return update, m
"""


@pytest.fixture(scope="module")
def lion_stream():
    return record_stream(resolve_target("lion"))


def test_fitting_brings_a_lion_with_wrong_constants_to_the_targets(lion_stream):
    """The rule the search relies on: once a program has the target's form, fitting its
    constants on the imitation score lands them close to the target's (here β1 0.8 -> 0.9,
    β2 0.95 -> 0.99, lr 3e-4 -> 1e-4, each within 5% in (1 - β) and lr)."""
    fit = fit_constants(parse(PERTURBED_LION),
                        lambda p: imitation_fitness(p, lion_stream).aggregate, 400)
    assert fit.improved and fit.fitness > 0.98 and fit.evaluations <= 400
    found = recognize(fit.program)
    assert found.name == "Lion"
    hp = found.hyperparameters
    assert abs((1 - hp["beta1"]) / 0.1 - 1) < 0.05
    assert abs((1 - hp["beta2"]) / 0.01 - 1) < 0.05
    assert abs(hp["lr"] / 1e-4 - 1) < 0.05


def test_a_fit_never_returns_a_worse_program_and_keeps_to_its_budget():
    """The start is the optimum of this score: the fit returns the program unchanged, and a
    fit spends at most the evaluations it is given, its start included."""
    program = parse(PERTURBED_LION)
    calls = []

    def score(p):
        calls.append(p)
        return -sum((math.log(abs(c0)) - math.log(abs(c))) ** 2 for c0, c in zip(
            _constants(program), _constants(p)))

    fit = fit_constants(program, score, 40)
    assert not fit.improved and fit.program == program
    assert fit.evaluations == len(calls) <= 40


def test_interp_weights_stay_below_one_and_signs_are_kept():
    """A β is fitted as log(1 - β): however hard the score pulls it up, it stays an EMA
    (< 1, never an explosion); any other constant keeps its sign."""
    program = parse("def train(w, g, m, lr):\n    m = interp(g, m, 0.9)\n"
                    "    update = m * -0.5\n    return update, m\n")
    fit = fit_constants(program, lambda p: p.statements[0].args[2] - p.statements[1].args[1],
                        100)
    beta, scale = fit.program.statements[0].args[2], fit.program.statements[1].args[1]
    assert fit.improved and 0.9 < beta < 1.0 and scale < -0.5


def test_only_live_nonzero_constants_are_fitted():
    """A constant in a dead statement changes nothing, and a zero has no scale to move on."""
    program = parse("def train(w, g, lr):\n    dead = g * 3.0\n    x = g + 0.0\n"
                    "    update = x * 0.01\n    return update\n")
    assert constant_sites(program) == [(2, 1)]


def _constants(program):
    return [a for s in program.statements for a in s.args if not isinstance(a, str)]


# -- the driver ---------------------------------------------------------------------------

def target_config(budget=90, seed=0, **search) -> Config:
    config = Config()
    config.search.population_size, config.search.tournament_size = 8, 3
    config.search.budget, config.search.seed = budget, seed
    config.search.refine_every, config.search.refine_evaluations = 30, 12
    for key, value in search.items():
        setattr(config.search, key, value)
    config.evaluation.target = "signum"
    return config.validate()


def run(path, config):
    driver = start_run(path, config, load_reference("adamw"))
    driver.run()
    driver.close()
    return driver.counters


def table(path):
    return [(r[0], r[3], r[4], r[5], r[6], r[13]) for r in candidate_rows(path)]


def test_refine_children_are_fitted_bests_and_count_in_the_budget(tmp_path):
    """Every `refine_every` evaluations the best program's constants are fitted; an improved
    fit joins as the best's child (op "refine") with a fitness at least the parent's, and the
    fit's evaluations are part of the budget."""
    path = str(tmp_path / "r")
    counters = run(path, target_config())
    rows = {r[0]: r for r in table(path)}
    refined = [r for r in rows.values() if r[2] == "refine"]
    assert counters["refined"] >= 1 and counters["refine_evaluations"] >= 2
    assert counters["screened"] + counters["refine_evaluations"] <= 90
    for _, parent, _, detail, _, aggregate in refined:
        assert "constants in" in detail and aggregate >= rows[parent][5]


def test_refine_is_off_outside_target_mode():
    """Constant fitting evaluates in process; on the proxy suites that would cost seconds per
    call, so the config refuses it there."""
    config = Config()
    config.search.refine_every = 10
    with pytest.raises(ConfigError, match="refine_every needs target mode"):
        config.validate()


def test_a_run_with_fits_stopped_and_resumed_equals_the_uninterrupted_run(tmp_path):
    """A fit is deterministic and its bookkeeping is part of the committed search state, so
    stops (including one inside a transaction) change nothing."""
    config = target_config(budget=70, seed=3)
    run(str(tmp_path / "full"), config)
    path = str(tmp_path / "stopped")
    driver = interrupt_and_resume(start_run(path, config, load_reference("adamw")), path,
                                  (3, 20), table)
    kill_inside_a_transaction(driver, 15)
    driver = resume_run(path)
    driver.run()
    driver.close()
    assert table(path) == table(str(tmp_path / "full"))

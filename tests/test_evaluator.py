"""Fitness normalisation, evaluate(), the baseline and fitness caches, the serial backend, CLI.

Fast: the real path uses the tiny "test" suite (digits MLP, 30 steps); failure modes that
the real tasks cannot produce on demand (a task that raises) use a fake task.
"""

import json
import math

import pytest

from optsearch.cli.main import main
from optsearch.evaluator import Fitness, FitnessCache, Suite, evaluate, make_backend, program_keys
from optsearch.evaluator import baseline as baseline_mod
from optsearch.evaluator.backends import BackendUnavailable
from optsearch.evaluator.fitness import FAILURE_FITNESS, SCORE_CAP, TaskFitness, normalise
from optsearch.evaluator.suites import evaluation_version
from optsearch.evaluator.train import compile_checked
from optsearch.primitives.parser import parse
from optsearch.primitives.reference import load_reference, reference_text
from optsearch.proxy_tasks.base import TaskResult

SEEDS = (0, 1)
DIVERGING = "def train(w, g, lr):\n    u = g * 1000000.0\n    return u\n"
NO_GRADIENT = "def train(w, g, lr):\n    u = w * 2.0\n    return u\n"
SYNTAX_ERROR = "def train(w, g, lr):\n    u = g +\n    return u\n"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Every test gets its own baseline cache: nothing leaks between tests or into ~/.cache."""
    monkeypatch.setenv("OPTSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    baseline_mod._MEMO.clear()
    return tmp_path / "cache"


class FakeTask:
    """Implements the task contract with a metric computed from the rule's first update, so
    different programs get different (deterministic) metrics without any training."""

    def __init__(self, mode="ok", lower_is_better=True):
        self.mode, self.lower_is_better = mode, lower_is_better

    def load_data(self):
        return {}

    def run(self, rule, seeds, data, device="cpu", time_limit_s=None):
        import torch
        if self.mode == "raise":
            raise RuntimeError("boom inside the task")
        w = torch.ones(len(seeds), 3)
        state = tuple(torch.zeros_like(w) for _ in range(rule.n_slots))
        update, _ = rule(w, torch.full_like(w, 0.5), state, 1.0)
        metric = [float(update[k].abs().mean()) + 0.01 * s for k, s in enumerate(seeds)]
        status = "ok" if self.mode == "ok" else self.mode
        return TaskResult(metric, self.lower_is_better, status, 1, 0.0)


def fake_suite(mode="ok", lower_is_better=True):
    return Suite("fake", {"fake": FakeTask(mode, lower_is_better)},
                 version=f"fake-{mode}-{lower_is_better}")


# ---- normalisation --------------------------------------------------------------------------
def test_normalise_is_a_ratio_that_rewards_the_better_direction():
    assert normalise(0.5, 1.0, lower_is_better=True) == 2.0
    assert normalise(2.0, 1.0, lower_is_better=True) == 0.5
    assert normalise(2.0, 1.0, lower_is_better=False) == 2.0


def test_normalise_is_bounded_and_finite_at_zero_and_infinity():
    assert normalise(0.0, 0.03, True) == SCORE_CAP          # a perfect metric is capped
    assert normalise(0.0, 0.0, True) == 1.0                 # 0/0: as good as the baseline
    assert normalise(math.inf, 1.0, True) == FAILURE_FITNESS
    assert normalise(math.nan, 1.0, True) == FAILURE_FITNESS


def test_adamw_scores_exactly_one_on_every_task():
    fitness = evaluate(reference_text("adamw"), "test", SEEDS)
    assert fitness.status == "ok" and fitness.aggregate == 1.0
    assert all(t.score == 1.0 and t.seed_scores == (1.0, 1.0) for t in fitness.tasks.values())


def test_other_programs_differ_from_the_baseline_and_aggregate_is_geometric_mean_of_seeds():
    fitness = evaluate(reference_text("sgdm"), "test", SEEDS)
    assert fitness.status == "ok" and fitness.aggregate != 1.0
    assert 0 < fitness.aggregate <= SCORE_CAP
    per_seed = fitness.seed_aggregates()
    assert math.isclose(math.prod(per_seed) ** (1 / len(SEEDS)), fitness.aggregate)


def test_tasks_combine_geometrically_so_a_gain_on_one_offsets_an_equal_loss_on_another():
    """Scores are ratios: 2x better on one task and 2x worse on another is AdamW's 1.0, and a
    huge ratio on one task cannot outvote the others (the arithmetic mean gave 1.25)."""
    def task(scores):
        return TaskFitness.scored([1.0 / s for s in scores], [1.0] * len(scores), True, "ok",
                                  10, 0.1)
    fitness = Fitness.from_tasks({"a": task([2.0, 2.0]), "b": task([0.5, 0.5])}, (0, 1), 0.2)
    assert math.isclose(fitness.aggregate, 1.0)
    assert all(math.isclose(a, 1.0) for a in fitness.seed_aggregates())


def test_higher_is_better_metrics_are_normalised_the_other_way():
    lower = evaluate(reference_text("sgdm"), fake_suite(lower_is_better=True), SEEDS)
    higher = evaluate(reference_text("sgdm"), fake_suite(lower_is_better=False), SEEDS)
    for low, high in zip(lower.tasks["fake"].seed_scores, higher.tasks["fake"].seed_scores):
        assert low < 1.0 < high and math.isclose(low * high, 1.0)


# ---- failures are values --------------------------------------------------------------------
@pytest.mark.parametrize("text, status", [(SYNTAX_ERROR, "invalid"), (NO_GRADIENT, "invalid"),
                                          (DIVERGING, "diverged")])
def test_bad_programs_get_a_finite_failure_fitness(text, status):
    fitness = evaluate(text, "test", SEEDS)
    assert fitness.status == status and fitness.aggregate == FAILURE_FITNESS
    assert math.isfinite(fitness.aggregate) and fitness.message


def test_running_out_of_time_is_a_timeout_not_an_exception():
    fitness = evaluate(reference_text("lion"), "test", SEEDS, time_limit_s=0.0)
    assert fitness.status == "timeout" and fitness.aggregate == FAILURE_FITNESS


def test_an_exception_during_training_is_status_error():
    suite = fake_suite("raise")
    fitness = evaluate(reference_text("lion"), suite, SEEDS, baseline={"fake": [1.0, 1.0]})
    assert fitness.status == "error" and "boom" in fitness.message
    assert fitness.aggregate == FAILURE_FITNESS


def test_a_failing_task_makes_the_whole_fitness_fail():
    fitness = evaluate(reference_text("lion"), fake_suite("diverged"), SEEDS,
                       baseline={"fake": [1.0, 1.0]})
    assert fitness.status == "diverged" and fitness.aggregate == FAILURE_FITNESS
    assert fitness.tasks["fake"].status == "diverged"


def test_fitness_round_trips_through_json():
    fitness = evaluate(reference_text("sgdm"), "test", SEEDS)
    again = Fitness.from_dict(json.loads(json.dumps(fitness.to_dict())))
    assert again == fitness
    assert isinstance(again.tasks["digits_mlp@0"], TaskFitness)


# ---- baseline -------------------------------------------------------------------------------
def test_baseline_is_computed_once_and_then_read_from_disk(cache_dir):
    first = baseline_mod.baseline_metrics("test", SEEDS)
    assert list((cache_dir / "baselines").glob("*.json"))
    baseline_mod._MEMO.clear()

    def must_not_run():
        raise AssertionError("baseline recomputed despite the disk cache")
    assert baseline_mod.baseline_metrics("test", SEEDS, compute=must_not_run) == first


def test_baseline_depends_on_the_seeds():
    assert (baseline_mod.baseline_metrics("test", (0,))["digits_mlp@0"]
            != baseline_mod.baseline_metrics("test", (1,))["digits_mlp@0"])


# ---- fitness cache --------------------------------------------------------------------------
def test_cache_miss_then_hit_and_persistence_across_instances(tmp_path):
    program = load_reference("lion")
    keys, version = program_keys(program), evaluation_version(Suite.named("test"), SEEDS)
    fitness = evaluate(program, "test", SEEDS)
    with FitnessCache(tmp_path / "fit.sqlite") as cache:
        assert cache.lookup(keys, version) is None and cache.misses == 1
        assert cache.store(keys, version, fitness)
        assert cache.lookup(keys, version) == fitness and cache.hits == 1
    with FitnessCache(tmp_path / "fit.sqlite") as reopened:
        assert reopened.lookup(keys, version) == fitness
        assert reopened.lookup(keys, version + "-other-seeds") is None


def test_cache_finds_a_renamed_program_by_either_key(tmp_path):
    renamed = parse(reference_text("lion").replace("update", "step"))
    keys = program_keys(load_reference("lion"))
    assert program_keys(renamed) == keys   # same structure and behaviour, other names
    with FitnessCache(tmp_path / "fit.sqlite") as cache:
        cache.put(keys[1], "v", Fitness.failure("diverged", "x"))   # fingerprint key only
        assert cache.lookup(program_keys(renamed), "v").status == "diverged"


def test_cache_refuses_outcomes_that_depend_on_the_machine(tmp_path):
    with FitnessCache(tmp_path / "fit.sqlite") as cache:
        assert not cache.put("k", "v", Fitness.failure("timeout", "slow machine"))
        assert not cache.put("k", "v", Fitness.failure("error", "worker crashed"))
        assert len(cache) == 0


def test_one_fitness_type_round_trips_through_cache_store_and_backends(tmp_path):
    """Every backend returns the evaluator's Fitness, and the cross-run cache and the run
    store give back an equal Fitness (bit for bit: the run store's JSON is unchanged)."""
    from optsearch.search.store import RunStore
    with make_backend("serial", suite="test", seeds=SEEDS) as serial, \
            make_backend("fake", seeds=SEEDS) as fake:
        for backend in (serial, fake):
            backend.submit(0, reference_text("lion"))
            backend.submit(1, DIVERGING if backend is serial else "def train(w, g, lr):\n"
                           "    u = exp(g)\n    return u\n")
        results = serial.poll(None) + fake.poll(1.0) + fake.poll(1.0)
    assert [type(f) for _, f, _ in results] == [Fitness] * 4
    assert [f.status for _, f, _ in results] == ["ok", "diverged"] * 2
    store = RunStore.create(str(tmp_path / "run"), "")
    with FitnessCache(tmp_path / "fit.sqlite") as cache:
        for k, (_, fitness, _) in enumerate(results):
            cache.put(f"k{k}", "v", fitness)
            store.cache_put(f"k{k}", "v", fitness, k)
            assert cache.get(f"k{k}", "v") == fitness
            assert store.cache_get(f"k{k}", "v") == (fitness, k)
            stored = store.conn.execute("SELECT fitness_json FROM cache WHERE key = ?",
                                        (f"k{k}",)).fetchone()[0]
            assert stored == json.dumps(store.cache_get(f"k{k}", "v")[0].to_dict())
    store.close()


# ---- serial backend -------------------------------------------------------------------------
def test_serial_backend_returns_every_job_once_in_submission_order():
    names = ["adamw", "lion", "sgdm"]
    with make_backend("serial", suite="test", seeds=SEEDS) as backend:
        for job_id, name in enumerate(names):
            backend.submit(job_id, reference_text(name))
        backend.submit(3, DIVERGING)
        results = backend.poll(timeout_s=None)
        assert backend.poll(timeout_s=0) == [] and backend.pending == 0
    assert [job for job, _, _ in results] == [0, 1, 2, 3]
    assert all(worker == "serial" for _, _, worker in results)
    for job_id, name in enumerate(names):
        assert results[job_id][1] == _same_but_cost(evaluate(reference_text(name), "test", SEEDS),
                                                    results[job_id][1])
    assert results[3][1].status == "diverged"


def test_make_backend_rejects_an_unknown_kind_or_suite_before_starting_anything():
    """One factory for every backend: a kind it does not know, or a suite that does not exist,
    is the caller's input and gets a one-line reason naming what is known."""
    with pytest.raises(BackendUnavailable, match=r"unknown backend 'gpu'; known: serial, ray, fake"):
        make_backend("gpu")
    with pytest.raises(BackendUnavailable, match=r"cannot start the serial backend: unknown "
                                                 r"suite 'nope'; known: default"):
        make_backend("serial", suite="nope")


def _same_but_cost(expected: Fitness, actual: Fitness) -> Fitness:
    """`expected` with the wall-clock fields of `actual`: everything else must be identical."""
    from dataclasses import replace
    tasks = {k: replace(t, seconds=actual.tasks[k].seconds) for k, t in expected.tasks.items()}
    return replace(expected, tasks=tasks, cost_s=actual.cost_s)


def test_compiled_rules_are_batched_over_seeds():
    assert compile_checked(reference_text("lion")).batch_dims == 1


# ---- CLI ------------------------------------------------------------------------------------
def test_cli_json_has_the_contract_keys(capsys):
    assert main(["evaluate", "adamw", "--suite", "test", "--seeds", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok" and out["aggregate"] == 1.0
    task = out["tasks"]["digits_mlp@0"]
    assert {"metric", "score", "per_seed"} <= set(task) and len(task["per_seed"]) == 2


def test_cli_table_and_invalid_program(capsys, tmp_path):
    assert main(["evaluate", "sgdm", "--suite", "test", "--seeds", "1"]) == 0
    assert "aggregate:" in capsys.readouterr().out
    bad = tmp_path / "bad.py"
    bad.write_text(NO_GRADIENT)
    assert main(["evaluate", str(bad), "--suite", "test"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}:3:")

"""The tail rung: a task's last steps, trained from the checkpoint of an AdamW run.

What it must never do: train anything but the full run's own last steps (same batches, same
step sizes, same divergence limit), let a program's moments start cold, or mistake its
results for the compressed rung's or the full suite's.
"""

import pickle

import pytest
from support import small_config

from optsearch import proxy_tasks
from optsearch.evaluator.fake_backend import FakeBackend
from optsearch.evaluator.rungs import TailTask, rung_suite
from optsearch.evaluator.serial_backend import SerialBackend
from optsearch.evaluator.train import compile_checked
from optsearch.primitives.reference import load_reference, reference_text
from optsearch.search.driver import start_run
from optsearch.search.stats import run_stats

ADAMW = reference_text("adamw")
TASKS = ("teacher_student", "noisy_quadratic", "digits_mlp")


@pytest.mark.parametrize("name", TASKS)
def test_the_reference_with_its_whole_history_reproduces_the_full_run_exactly(name):
    """Rule: the tail continues the full run. With a history as long as the steps before the
    checkpoint, the reference rule's state is rebuilt exactly, so its tail run ends on the
    full run's weights, bit for bit; any drift in batches, step sizes or state shows here."""
    task = proxy_tasks.get_task(name, 0)
    data, rule = task.load_data(), compile_checked(ADAMW)
    tail = TailTask(task, 0.25, ADAMW, history=task.config.steps)   # capped: every step
    assert tail.history == task.config.steps - tail.tail
    assert tail.run(rule, [0, 1], data).metric == task.run(rule, [0, 1], data).metric


def test_a_group_of_an_lr_sweep_gets_the_numbers_it_gets_alone():
    """Rule: member groups (evaluator.lr_sweep) see the same checkpoint and batches."""
    task = proxy_tasks.get_task("teacher_student", 0)
    tail, data = TailTask(task, 0.25, ADAMW), task.load_data()
    rule = compile_checked(reference_text("lion"))
    alone = tail.run(rule, [0, 1], data).metric
    assert tail.run(rule, [0, 1, 0, 1], data, groups=2).metric == alone * 2


def test_the_state_is_warmed_on_the_history_before_the_tail():
    """Rule: a rule's moments are run through the reference's last steps first: a longer
    history changes a momentum rule's tail (it would not if the state started cold)."""
    task = proxy_tasks.get_task("teacher_student", 0)
    data, rule = task.load_data(), compile_checked(reference_text("lion"))
    short = TailTask(task, 0.25, ADAMW, history=0).run(rule, [0], data).metric
    warm = TailTask(task, 0.25, ADAMW, history=1.0).run(rule, [0], data).metric
    assert short != warm


def test_the_tail_rung_is_its_own_suite_and_ships_without_its_checkpoints():
    """Rule: tail, compressed and full suites never share a version (so never a cache or a
    baseline); a pickled tail task (to a Ray worker) leaves its checkpoints behind and makes
    the same ones again."""
    full = "test"
    tail, compressed = rung_suite(full, 0.25, "tail"), rung_suite(full, 0.25)
    assert list(tail.tasks) == list(compressed.tasks)
    assert len({tail.version, compressed.version, rung_suite(full, 0.5, "tail").version}) == 3
    task = next(iter(tail.tasks.values()))
    data, rule = task.load_data(), compile_checked(ADAMW)
    before = task.run(rule, [0], data).metric
    copy = pickle.loads(pickle.dumps(task))
    assert copy._checkpoints == {} and copy.run(rule, [0], data).metric == before
    with pytest.raises(ValueError, match="rung kind"):
        rung_suite(full, 0.25, "prefix")
    fake = [FakeBackend(rung_fraction=0.25, rung_kind=kind).rung_suite.version
            for kind in ("compressed", "tail")]
    assert fake[0] != fake[1]


def test_a_serial_backend_scores_the_tail_against_adamws_own_tail(tmp_path):
    """Rule: a rung score is normalised against AdamW on the same rung, so AdamW scores 1."""
    backend = SerialBackend("test", (0, 1), rung_fraction=0.25, rung_kind="tail",
                            cache_dir=tmp_path)
    assert backend.rung_suite.name == "test@tail0.25"
    assert backend.evaluate_job(ADAMW, rung=True).aggregate == pytest.approx(1.0)


def test_a_hurdles_search_screens_on_the_tail_when_the_config_says_so(tmp_path):
    """Rule: `evaluation.rung_kind = "tail"` reaches the backend the search uses; every rung
    result of the run is a tail result, stored apart from the fitness."""
    config = small_config(12, 0, evaluation={"hurdles": True, "rung_kind": "tail",
                                             "backend": "serial", "suite": "test",
                                             "seeds": 2, "rung_fraction": 0.25})
    driver = start_run(str(tmp_path / "r"), config, load_reference("adamw"))
    assert driver.backend.rung_suite.name == "test@tail0.25"
    driver.run()
    stats = run_stats(driver.store)
    driver.backend.close()
    driver.store.close()
    assert stats["screened"] == 12 and stats["rung_evaluated"] >= 1

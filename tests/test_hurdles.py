"""Progressive hurdles: the rung suite, rung bookkeeping in the store, and that a rung score is
never taken for a fitness (selection, best, funnel, inspect), also across stop/resume."""

import dataclasses
import itertools
import json
import math
import os
import sqlite3

import pytest
from support import interrupt_and_resume, kill_inside_a_transaction, small_config

from optsearch.cli.main import main
from optsearch.evaluator import fake_backend
from optsearch.evaluator.fake_backend import FakeBackend
from optsearch.evaluator.rungs import rung_suite
from optsearch.evaluator.serial_backend import SerialBackend
from optsearch.evaluator.suites import Suite
from optsearch.primitives.reference import load_reference, reference_text
from optsearch.search.config import ConfigError, from_dict
from optsearch.search.driver import resume_run, start_run
from optsearch.search.evolution import Individual
from optsearch.search.hurdles import clears, population_hurdle
from optsearch.search.stats import run_stats
from optsearch.search.store import RunStore

ADAMW = load_reference("adamw")
CANDIDATES = ("SELECT id, island, epoch, parent_id, mutation, program, status, source, "
              "duplicate_of, fitness_json, aggregate FROM candidates ORDER BY id")
RUNGS = ("SELECT candidate_id, status, aggregate, fitness_json, hurdle, passed, source, "
         "duplicate_of FROM rungs ORDER BY candidate_id")


def hurdle_config(budget=60, seed=0, **search):
    return small_config(budget, seed, evaluation={"hurdles": True}, **search)


def tables(run_dir):
    with sqlite3.connect(os.path.join(run_dir, "run.sqlite")) as conn:
        return conn.execute(CANDIDATES).fetchall(), conn.execute(RUNGS).fetchall()


def finished(driver):
    driver.run()
    driver.backend.close()
    stats = run_stats(driver.store)
    state = driver.store.load_state("search")
    driver.store.close()
    return stats, state


def untimed(fitness) -> dict:
    d = fitness.to_dict() | {"cost_s": 0}
    d["tasks"] = {k: t | {"seconds": 0} for k, t in d["tasks"].items()}
    return d


# -- the rung ------------------------------------------------------------------------------

def test_rung_suite_cuts_only_the_steps_and_keeps_config_overrides():
    """A rung task is the full task at fewer steps: batch size and other overrides stay."""
    full = Suite.custom("x", [("teacher_student", 0, {"batch_size": 64}), ("digits_mlp", 0)])
    rung = rung_suite(full, 0.25)
    assert list(rung.tasks) == list(full.tasks)  # same task keys: same data, same report
    for key, task in full.tasks.items():
        short = rung.tasks[key]
        assert short.config.steps == max(1, round(task.config.steps * 0.25))
        assert short.config.batch_size == task.config.batch_size
        assert {**vars(short.config), "steps": 0} == {**vars(task.config), "steps": 0}
    assert rung.tasks["teacher_student@0,batch_size=64"].config.batch_size == 64
    assert rung.version != full.version  # its cached fitness and baseline are its own
    with pytest.raises(ValueError):
        rung_suite(full, 0.0)


def test_rung_has_its_own_adamw_baseline_and_leaves_full_results_unchanged(tmp_path):
    """AdamW scores 1.0 on the rung (normalised at the rung's length), and a backend that also
    serves the rung gives exactly the full fitness it gave without one."""
    plain = SerialBackend(suite="test", seeds=(0, 1), cache_dir=tmp_path)
    both = SerialBackend(suite="test", seeds=(0, 1), cache_dir=tmp_path, rung_fraction=0.5)
    lion = reference_text("lion")
    results = {}
    for name, backend, rung in (("plain", plain, False), ("full", both, False),
                                ("rung", both, True), ("adamw", both, True)):
        backend.submit(0, reference_text("adamw") if name == "adamw" else lion, rung=rung)
        [(_, results[name], _)] = backend.poll()
    assert untimed(results["plain"]) == untimed(results["full"])
    assert results["adamw"].aggregate == pytest.approx(1.0)
    assert results["rung"].suite_version == both.rung_suite.version != both.suite.version
    steps = {k: t.steps for k, t in results["rung"].tasks.items()}
    assert steps == {k: t.config.steps for k, t in both.rung_suite.tasks.items()}
    with pytest.raises(ValueError):
        plain.submit(1, lion, rung=True)  # made without a rung: never silently full


def member(fitness, rung):
    return Individual(0, ADAMW, fitness, "h", rung)


def test_hurdle_is_a_quantile_of_the_evaluated_members_and_failures_never_clear_it():
    """Only members with a fitness and a rung score set the hurdle; a stopped member (no
    fitness) never raises it."""
    population = [member(1.0, None), member(1.0, 3.0), member(1.0, 1.0), member(1.0, 2.0),
                  member(-math.inf, 9.0)]
    assert population_hurdle(population, 0.5) == 2.0
    assert population_hurdle([member(1.0, None), member(-math.inf, 1.0)], 0.5) is None
    assert clears("ok", 2.0, 2.0) and not clears("ok", 1.9, 2.0)
    assert clears("ok", 0.1, None)  # nothing to clear yet
    assert not clears("diverged", 0.0, None)


def test_config_rejects_bad_rung_settings():
    for bad in ({"rung_fraction": 1.0}, {"rung_fraction": 0.0}, {"hurdle_quantile": 1.5},
                {"hurdle_patience": -1}, {"rung_kind": "prefix"}):
        with pytest.raises(ConfigError, match="evaluation"):
            from_dict({"evaluation": bad})


# -- the search ----------------------------------------------------------------------------

def test_counts_add_up_and_every_candidate_went_rung_then_full_or_stopped(tmp_path):
    """Each program that costs an evaluation is counted once against the budget; a full
    evaluation only follows a rung result that cleared the hurdle it was held against."""
    stats, _state = finished(start_run(str(tmp_path / "r"), hurdle_config(budget=120), ADAMW))
    assert stats["screened"] == 120 and stats["in_flight"] == 0
    assert stats["proposed"] == (stats["invalid"] + stats["unchanged"] + stats["cache_hits"]
                                 + stats["screened"])
    assert 0 < stats["stopped"] and stats["evaluated"] < stats["screened"]
    candidates, rungs = tables(str(tmp_path / "r"))
    rung = {r[0]: r for r in rungs}
    for c in candidates:
        cid, mutation, status, source = c[0], c[4], c[6], c[7]
        if source == "evaluated":  # a full evaluation: it ran (or found cached) a passed rung
            assert rung[cid][5] == 1
            hurdle = rung[cid][4]
            assert mutation == "init" or hurdle is None or rung[cid][2] >= hurdle
        if status == "stopped":
            assert c[9] is None and c[10] is None  # no fitness at all
            if source != "twin":
                assert rung[cid][5] == 0 and (rung[cid][1] != "ok" or rung[cid][2] < rung[cid][4])
    assert stats["rung_evaluated"] == sum(r[6] == "evaluated" for r in rungs)
    assert stats["evaluated"] == sum(c[7] == "evaluated" for c in candidates)


@pytest.fixture
def inflated_rungs(monkeypatch):
    """Rung scores 100x any fitness: if anything ranked by a rung score, a stopped child would
    come out on top."""
    real = fake_backend.fake_fitness

    def fitness(text, seeds=(), rung=None):
        f = real(text, seeds, rung)
        return f if rung is None else dataclasses.replace(f, aggregate=f.aggregate * 100)

    monkeypatch.setattr(fake_backend, "fake_fitness", fitness)


def test_selection_best_funnel_and_inspect_never_use_a_rung_score(tmp_path, inflated_rungs,
                                                                 capsys):
    run_dir = str(tmp_path / "r")
    stats, _ = finished(start_run(run_dir, hurdle_config(budget=80), ADAMW))
    candidates, rungs = tables(run_dir)
    stopped = {c[0] for c in candidates if c[6] == "stopped"}
    full = {c[0]: c[10] for c in candidates if c[10] is not None}
    assert stopped and max(r[2] for r in rungs) > 10 * max(full.values())
    members = driver_population(run_dir)
    assert not {m.id for m in members} & stopped  # stopped children never become members
    for m in members:  # members rank by their full fitness alone
        assert m.fitness == full[m.id]
    assert stats["best_fitness"] == max(full.values()) and stats["best_id"] not in stopped
    store = RunStore.open(run_dir, readonly=True)
    assert not stopped & {r["id"] for r in store.ranked(evaluated_only=True, k=10)}  # funnel
    assert not stopped & {r["id"] for r in store.ranked(distinct=False)}
    assert store.winner() is None or store.winner().candidate_id not in stopped
    store.close()
    assert main(["inspect", run_dir, "list", "--json", "--all", "--top", "1000"]) == 0
    rows = json.loads(capsys.readouterr().out)["candidates"]
    assert rows and all(r["fitness"] <= max(full.values()) for r in rows)
    assert not stopped & {r["id"] for r in rows}


def test_stopped_children_never_age_the_population_nor_move_the_hurdle(tmp_path):
    """The population ages only by children that get a fitness: a step that only stops a child
    leaves the island as it was (members, hurdle, plateau count), so after many stopped
    children the population still holds P evaluated members and the hurdle never falls back
    to 'none'."""
    driver = start_run(str(tmp_path / "r"), hurdle_config(budget=200), ADAMW)
    island, steps = driver.islands[0], []

    def on_step(d):
        members = [(m.id, m.fitness, m.rung) for m in island.population]
        steps.append((d.counters["stopped"], d.counters["evaluated"] + d.counters["cache_hits"],
                      members, population_hurdle(island.population, 0.5), island.state()))

    driver.on_step = on_step
    stats, _ = finished(driver)
    assert stats["stopped"] >= 10 * 8  # P = 8: the old rule would have aged it out 10 times
    for before, after in itertools.pairwise(steps):
        if after[0] > before[0] and after[1] == before[1]:  # this step only stopped children
            assert after[2:] == before[2:]
    members = steps[-1][2]
    assert len(members) == 8 and all(math.isfinite(f) for _, f, _ in members)
    started = next(i for i, s in enumerate(steps) if s[2])  # the warm start is in
    assert all(step[3] is not None for step in steps[started:])


def test_duplicates_bring_the_rung_score_of_the_program_they_repeat(tmp_path):
    """A cache hit or twin joins the population with the rung score of the candidate it
    duplicates, also after a resume, so a population refilled by duplicates keeps a hurdle."""
    run_dir = str(tmp_path / "r")
    finished(start_run(run_dir, hurdle_config(budget=120), ADAMW))
    candidates, rungs = tables(run_dir)
    rung = {r[0]: r[2] for r in rungs}
    duplicate_of = {c[0]: c[8] for c in candidates if c[7] in ("cache", "twin")}
    members = driver_population(run_dir)
    assert any(m.id in duplicate_of for m in members)
    for m in members:
        assert m.rung == rung[duplicate_of.get(m.id, m.id)]


def driver_population(run_dir):
    driver = resume_run(run_dir)
    members = list(driver.islands[0].population)
    driver.close()
    return members


def test_the_population_keeps_its_rung_scores_across_a_resume(tmp_path):
    """The hurdle after a resume is computed from the same rung scores as before it."""
    driver = start_run(str(tmp_path / "r"), hurdle_config(budget=30), ADAMW)
    driver.run()
    before = [(ind.id, ind.fitness, ind.rung) for ind in driver.islands[0].population]
    driver.close()
    driver = resume_run(str(tmp_path / "r"))
    after = [(ind.id, ind.fitness, ind.rung) for ind in driver.islands[0].population]
    driver.close()
    assert before == after and any(rung is not None for _, _, rung in after)


@pytest.mark.parametrize("stops", [(1,), (8, 9), (9, 2, 17, 30)])
def test_stop_in_the_middle_of_a_rung_and_resume_reproduces_the_uninterrupted_run(tmp_path,
                                                                                  stops):
    """Stops land after proposals (rung not yet submitted), after rung results (full not yet
    submitted) and after full results; nothing committed is lost, nothing is redone twice."""
    config = hurdle_config(budget=50, seed=5, restart_plateau=12)
    finished(start_run(str(tmp_path / "full"), config, ADAMW))
    path = str(tmp_path / "stopped")
    driver = start_run(path, config, ADAMW)
    driver = interrupt_and_resume(driver, path, stops, tables)
    finished(driver)
    assert tables(path) == tables(str(tmp_path / "full"))


def judged_in_order(run_dir):
    """(passed, rung status, rung score, hurdle) of every non-initial rung judgement, in the
    order they were made."""
    with sqlite3.connect(os.path.join(run_dir, "run.sqlite")) as conn:
        return conn.execute(
            "SELECT r.passed, r.status, r.aggregate, r.hurdle FROM rungs r JOIN candidates c "
            "ON c.id = r.candidate_id WHERE c.mutation != 'init' "
            "ORDER BY r.finished_at, r.candidate_id").fetchall()


def below_hurdle(row) -> bool:
    passed, status, score, hurdle = row
    return passed == 1 and status == "ok" and hurdle is not None and score < hurdle


@pytest.mark.parametrize("patience", [0, 3])
def test_stall_guard_sends_a_child_on_after_patience_stops_in_a_row(tmp_path, patience):
    """Rule: with hurdle_patience = K, after K children in a row were stopped the next child
    whose rung finished goes on to full evaluation whatever its score (a failed rung never
    does); with K = 0 a child below the hurdle never goes on."""
    run_dir = str(tmp_path / "r")
    config = small_config(200, 2, evaluation={"hurdles": True, "hurdle_patience": patience},
                          restart_plateau=0)
    finished(start_run(run_dir, config, ADAMW))
    judged, in_a_row, forced = judged_in_order(run_dir), 0, 0
    for row in judged:
        if below_hurdle(row):
            assert in_a_row >= patience > 0
            forced += 1
        if row[1] == "ok" and patience and in_a_row >= patience:
            assert row[0] == 1  # a finished rung after K stops in a row always goes on
        in_a_row = 0 if row[0] else in_a_row + 1
    assert (forced > 0) == (patience > 0)


def test_stall_guard_count_survives_a_stop_and_resume(tmp_path):
    """The count of stops in a row is part of the committed state: a resumed run forces the
    same children through as the uninterrupted one."""
    config = small_config(60, 4, evaluation={"hurdles": True, "hurdle_patience": 2})
    finished(start_run(str(tmp_path / "full"), config, ADAMW))
    path = str(tmp_path / "stopped")
    driver = interrupt_and_resume(start_run(path, config, ADAMW), path, (9, 17), tables)
    finished(driver)
    assert tables(path) == tables(str(tmp_path / "full"))
    assert any(below_hurdle(r) for r in judged_in_order(path))


def test_a_rung_step_killed_before_its_commit_is_redone_identically(tmp_path):
    config = hurdle_config(budget=40, seed=3)
    finished(start_run(str(tmp_path / "full"), config, ADAMW))
    for kill_at in (12, 13, 27):
        path = str(tmp_path / f"killed{kill_at}")
        driver = start_run(path, config, ADAMW)
        kill_inside_a_transaction(driver, kill_at)
        finished(resume_run(path))
        assert tables(path) == tables(str(tmp_path / "full"))


def test_asynchronous_workers_with_hurdles_keep_counts_consistent(tmp_path):
    def factory(ev):
        return FakeBackend(workers=4, seeds=range(ev.seeds), order="random", seed=2,
                           rung_fraction=ev.rung_fraction)

    driver = start_run(str(tmp_path / "r"), hurdle_config(budget=80, islands=2), ADAMW,
                       backend_factory=factory)
    stats, _ = finished(driver)
    assert stats["screened"] == 80 and stats["in_flight"] == 0
    assert stats["proposed"] == (stats["invalid"] + stats["unchanged"] + stats["cache_hits"]
                                 + stats["screened"])


def test_inspect_stats_reports_hurdles_and_duplicates(tmp_path, capsys):
    config = tmp_path / "h.toml"
    config.write_text("[search]\npopulation_size = 8\ntournament_size = 3\nbudget = 40\n\n"
                      "[evaluation]\nbackend = \"fake\"\nhurdles = true\n")
    run_dir = str(tmp_path / "run")
    assert main(["search", "--config", str(config), "--out", run_dir, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["inspect", run_dir, "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["screened"] == 40 and stats["stopped"] > 0
    assert 0 < stats["removed_by_structural_hash"] < 1
    assert main(["inspect", run_dir, "stats"]) == 0
    text = capsys.readouterr().out
    assert "stopped at the hurdle" in text and "by the structural hash" in text

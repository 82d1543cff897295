"""Run store and driver: persistence, dedup counts, exact reproducibility across stop/resume."""

import os
import sqlite3

import pytest
from support import candidate_rows, interrupt_and_resume, kill_inside_a_transaction, small_config

from optsearch.evaluator.fake_backend import FakeBackend
from optsearch.evaluator.fitness import Fitness
from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.parser import parse
from optsearch.primitives.reference import load_reference
from optsearch.search.driver import resume_run, start_run
from optsearch.search.stats import run_stats
from optsearch.search.store import RunStore

ADAMW = load_reference("adamw")
def table(run_dir):
    return candidate_rows(run_dir)


def finished(driver):
    driver.run()
    driver.backend.close()
    stats = run_stats(driver.store)
    driver.store.close()
    return stats


def test_store_round_trips_candidates_cache_and_state(tmp_path):
    store = RunStore.create(str(tmp_path / "r"), "[search]\n")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with store.transaction():
        store.insert_candidate(id=0, island=0, epoch=0, parent_id=None, mutation="init",
                               detail="", program="p", structural_hash="h", status="pending",
                               proposed_at=1.0)
        store.cache_put("h:h", "v1", Fitness("ok", 1.5), 0)
        store.save_state("search", {"rng": [1, 2]})
    with pytest.raises(RuntimeError), store.transaction():
        store.update_candidate(0, status="ok")
        raise RuntimeError("killed mid-step")  # rolled back: the step never happened
    store.close()
    store = RunStore.open(str(tmp_path / "r"))
    assert store.candidate(0)["status"] == "pending"
    assert store.cache_get("h:h", "v1") == (Fitness("ok", 1.5), 0) and store.cache_get("h:h", "v2") is None
    assert store.load_state("search") == {"rng": [1, 2]}
    with pytest.raises(FileExistsError):
        RunStore.create(str(tmp_path / "r"), "")
    with pytest.raises(FileNotFoundError):
        RunStore.open(str(tmp_path / "missing"))


def test_driver_counts_dedup_and_never_evaluates_a_duplicate(tmp_path):
    driver = start_run(str(tmp_path / "r"), small_config(budget=60), ADAMW)
    backend = driver.backend
    stats = finished(driver)
    assert stats["evaluated"] == 60 and stats["in_flight"] == 0 and stats["cache_hits"] > 0
    assert stats["proposed"] == (stats["invalid"] + stats["unchanged"] + stats["cache_hits"]
                                 + stats["evaluated"])
    rows = {r[0]: r for r in table(str(tmp_path / "r"))}
    submitted = [rows[i] for i in backend.submitted]
    assert len({r[7] for r in submitted}) == len({r[8] for r in submitted}) == len(submitted)
    for r in rows.values():
        assert r[9] not in ("pending", "waiting")
        if r[10] != "evaluated":  # a cache hit took the fitness of an equivalent program
            source = rows[r[11]]
            assert (source[7], source[13]) == (r[7], r[13]) or source[8] == r[8]
    assert stats["failed"] == sum(r[10] == "evaluated" and r[9] != "ok" for r in rows.values())
    best = parse((tmp_path / "r" / "best.py").read_text())
    assert structural_hash(best) == rows[stats["best_id"]][7]


def test_twin_waits_for_its_in_flight_duplicate(tmp_path):
    # Two islands warm-started from AdamW: the second island's initial program is in flight
    # already, so it waits for the first one's result instead of being evaluated again.
    driver = start_run(str(tmp_path / "r"), small_config(budget=10, islands=2), ADAMW)
    finished(driver)
    rows = table(str(tmp_path / "r"))
    assert rows[0][4] == rows[1][4] == "init"
    assert rows[1][10] == "twin" and rows[1][11] == 0 and rows[1][13] == rows[0][13]


def test_asynchronous_finish_order_keeps_counts_consistent(tmp_path):
    def factory(ev):
        return FakeBackend(workers=4, order="random", seed=3)

    driver = start_run(str(tmp_path / "r"), small_config(budget=50, restart_plateau=10), ADAMW,
                       backend_factory=factory)
    stats = finished(driver)
    assert stats["evaluated"] == 50 and stats["restarts"] >= 1
    assert stats["proposed"] == (stats["invalid"] + stats["unchanged"] + stats["cache_hits"]
                                 + stats["evaluated"])


def test_random_init_run(tmp_path):
    stats = finished(start_run(str(tmp_path / "r"), small_config(budget=20), None))
    assert stats["evaluated"] == 20
    assert sum(r[4] == "init" for r in table(str(tmp_path / "r"))) == 8


@pytest.mark.parametrize("stops", [(1,), (2, 5, 11), (30, 1, 40)])
def test_stop_and_resume_reproduces_the_uninterrupted_run(tmp_path, stops):
    config = small_config(budget=40, seed=7, restart_plateau=8)
    finished(start_run(str(tmp_path / "full"), config, ADAMW))
    path = str(tmp_path / "stopped")
    driver = start_run(path, config, ADAMW)
    driver = interrupt_and_resume(driver, path, stops, table)
    finished(driver)
    assert table(path) == table(str(tmp_path / "full"))
    assert (tmp_path / "stopped" / "best.py").read_text() == \
        (tmp_path / "full" / "best.py").read_text()


def test_a_step_killed_before_its_commit_is_redone_identically(tmp_path):
    config = small_config(budget=30, seed=3)
    finished(start_run(str(tmp_path / "full"), config, ADAMW))
    path = str(tmp_path / "killed")
    driver = start_run(path, config, ADAMW)
    kill_inside_a_transaction(driver, 25)
    finished(resume_run(path))
    assert table(path) == table(str(tmp_path / "full"))


def step_writes(run_dir, config) -> list[int]:
    """Characters of SQL (values included) each committed step of a run sends to sqlite."""
    driver = start_run(run_dir, config, ADAMW)
    steps, current = [], []

    def trace(sql):
        if sql.startswith("BEGIN"):
            current.clear()
        elif sql == "COMMIT":
            steps.append(sum(map(len, current)))
        else:
            current.append(sql)

    driver.store.conn.set_trace_callback(trace)
    finished(driver)
    return steps


def test_a_steps_writes_do_not_grow_with_the_population(tmp_path):
    """A step saves what changed -- the candidate, one member in and one out -- never the
    whole population: with P = 2000 a step writes what it writes with P = 8. (Once per
    run, the warm start's P copies of the initial program are written.)"""
    small = step_writes(str(tmp_path / "p8"), small_config(budget=40, restart_plateau=0))
    large = step_writes(str(tmp_path / "p2000"), small_config(budget=40, restart_plateau=0,
                                                              population_size=2000))
    assert min(len(small), len(large)) > 40
    warm_start = max(large)
    assert warm_start > 2000 * len("INSERT INTO members VALUES (0, 0, 0)")
    large.remove(warm_start)
    assert max(large) < 1.2 * max(small)


def test_a_run_saved_with_its_populations_in_the_state_resumes_identically(tmp_path):
    """Runs from before the table `members` kept each population as a list in the search
    state: they resume as if never stopped, and `inspect stats` reads their populations."""
    config = small_config(budget=40, seed=7, restart_plateau=8)
    finished(start_run(str(tmp_path / "full"), config, ADAMW))
    path = str(tmp_path / "old")
    driver = start_run(path, config, ADAMW)
    driver = interrupt_and_resume(driver, path, (30,), table)
    driver.backend.close()
    driver.store.close()
    store = RunStore.open(path)
    state, dead_fraction = store.load_state("search"), run_stats(store)["dead_fraction"]
    for island, members in zip(state["islands"], store.populations(state)):
        del island["joined"]
        island["population"] = members
    with store.transaction():
        store.save_state("search", state)
        store.conn.execute("DELETE FROM members")
    assert len(store.populations(state)[0]) == 8
    assert run_stats(store)["dead_fraction"] == dead_fraction
    store.close()
    finished(resume_run(path))
    assert table(path) == table(str(tmp_path / "full"))


def test_resume_with_a_larger_budget_continues(tmp_path):
    path = str(tmp_path / "r")
    finished(start_run(path, small_config(budget=10), ADAMW))
    stats = finished(resume_run(path, budget=25))
    assert stats["evaluated"] == 25 and stats["budget"] == 25


def test_shared_cache_serves_a_second_run(tmp_path):
    pytest.importorskip("optsearch.evaluator.cache")
    config = small_config(budget=15)
    config.evaluation.shared_cache = str(tmp_path / "shared.sqlite")
    finished(start_run(str(tmp_path / "a"), config, ADAMW))
    stats = finished(start_run(str(tmp_path / "b"), config, ADAMW))
    first = table(str(tmp_path / "b"))[0]
    assert first[10] == "cache" and first[11] is None  # AdamW came from the earlier run
    assert stats["evaluated"] == 15


# ---------------------------------------------------------------- the winner of a run
def _scored_run(tmp_path, aggregates):
    """A run whose candidates 1..n finished ok (program "p<i>") with these search fitnesses."""
    store = RunStore.create(str(tmp_path / "w"), "")
    with store.transaction():
        for i, aggregate in enumerate(aggregates, start=1):
            store.insert_candidate(id=i, island=0, epoch=0, parent_id=None, mutation="init",
                                   detail="", program=f"p{i}", structural_hash=f"h{i}",
                                   fingerprint=f"f{i}", status="ok", source="evaluated",
                                   aggregate=aggregate, proposed_at=0.0, finished_at=float(i))
    return store


def test_the_winner_is_the_best_search_fitness_until_the_funnel_has_a_result(tmp_path):
    store = _scored_run(tmp_path, [1.0, 3.0, 3.0, 2.0])
    assert store.winner().candidate_id == 2  # ties: the earliest
    assert store.winner().stage is None
    store.record_funnel_round([])  # a funnel that had nothing to compare
    assert store.winner().candidate_id == 2


def test_the_winner_is_the_best_of_the_latest_funnel_runs_last_stage(tmp_path):
    """The funnel's verdict overrides search fitness, and only its latest run counts: a
    re-run with fewer stages must not hand on a winner of a stage it did not run."""
    store = _scored_run(tmp_path, [1.0, 3.0, 2.0])
    for cid, stage, aggregate in ((2, 1, 1.1), (3, 1, 1.4), (1, 1, 0.9), (3, 2, 1.2)):
        store.record_funnel_result(cid, stage, "s", f"v{stage}", aggregate, 0.1, True, "{}")
    store.record_funnel_round([("v1", [3, 2, 1]), ("v2", [3])])
    winner = store.winner()
    assert (winner.candidate_id, winner.stage, winner.program) == (3, 2, "p3")
    store.record_funnel_round([("v1", [2, 1])])  # a later run, one stage, other programs
    assert (store.winner().candidate_id, store.winner().stage) == (2, 1)


def test_an_old_run_without_funnel_table_opens_read_only_and_resumes(tmp_path):
    """Runs written before the store owned the funnel table: viewers read them without
    writing (no table appears), and a read-write open (resume) adds the table."""
    run_dir = str(tmp_path / "old")
    driver = start_run(run_dir, small_config(budget=10), ADAMW)
    finished(driver)
    with sqlite3.connect(os.path.join(run_dir, "run.sqlite")) as conn:
        conn.execute("DROP TABLE funnel")
    store = RunStore.open(run_dir, readonly=True)
    assert store.funnel_table() == [] and store.funnel_results("v") == []
    assert store.winner().candidate_id == run_stats(store)["best_id"]
    store.close()
    with sqlite3.connect(os.path.join(run_dir, "run.sqlite")) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "funnel" not in tables, "a read-only open never writes"
    driver = resume_run(run_dir, budget=14)
    stats = finished(driver)
    assert stats["evaluated"] == 14
    assert RunStore.open(run_dir, readonly=True).funnel_table() == []


def test_a_run_funneled_before_rounds_were_recorded_takes_its_deepest_stage(tmp_path):
    store = _scored_run(tmp_path, [1.0, 3.0, 2.0])
    for cid, stage, aggregate in ((2, 1, 1.1), (3, 1, 1.4), (1, 2, 1.3), (3, 2, 1.2)):
        store.record_funnel_result(cid, stage, "s", f"v{stage}", aggregate, 0.1, True, "{}")
    assert (store.winner().candidate_id, store.winner().stage) == (1, 2)

"""Funnel selection: top distinct programs -> 10x suite -> only AdamW-beaters -> 100x suite."""

from __future__ import annotations

from optsearch.evaluator.backends import make_backend
from optsearch.primitives.reference import reference_text
from optsearch.search.distill.funnel import run_funnel
from optsearch.search.store import RunStore

SEEDS = (0, 1)


def _store_with(tmp_path, programs):
    """A run store holding `programs` (text, aggregate, structural hash) as evaluated rows."""
    store = RunStore.create(str(tmp_path / "run"), "")
    with store.transaction():
        for i, (text, aggregate, shash) in enumerate(programs, start=1):
            store.insert_candidate(id=i, island=0, epoch=0, parent_id=None, mutation="init", detail="",
                                   program=text, structural_hash=shash, fingerprint=f"f{shash}",
                                   status="ok", source="evaluated", aggregate=aggregate,
                                   proposed_at=0.0)
    return store


def _serial(suite):
    return make_backend("serial", suite=suite, seeds=SEEDS)


def test_top_distinct_keeps_one_program_per_structural_hash_best_first(tmp_path):
    store = _store_with(tmp_path, [("a", 1.0, "h1"), ("b", 3.0, "h2"), ("c", 2.0, "h2"),
                                   ("d", 1.5, "h3")])
    assert [r["program"] for r in store.ranked(evaluated_only=True, k=3)] == ["b", "d", "a"]


def test_only_programs_beating_adamw_reach_the_next_stage_and_results_are_stored(
        tmp_path, tiny_meta_suites):
    lion_far_too_small_lr = reference_text("lion").replace("0.0001", "1e-09")
    store = _store_with(tmp_path, [(reference_text("signum").replace("0.0001", "0.01"), 2.0, "s"),
                                   (lion_far_too_small_lr, 1.5, "l")])
    logs = []
    stages = run_funnel(store, _serial, "test", scales=(10, 100), top_k=2, log=logs.append)
    first, second = stages
    assert {r.candidate_id for r in first} == {1, 2}
    by_id = {r.candidate_id: r for r in first}
    assert by_id[1].passed and by_id[1].aggregate > 1.0      # sign momentum beats AdamW
    assert not by_id[2].passed                               # lr 1e-9 cannot
    assert [r.candidate_id for r in second] == [1]           # only the winner goes on
    assert len(store.funnel_table()) == 3
    # a re-run (e.g. after a kill) re-evaluates nothing: results come from the run database
    logs.clear()
    again = run_funnel(store, _serial, "test", scales=(10, 100), top_k=2, log=logs.append)
    assert all("(0 to evaluate)" in line for line in logs)
    assert [[r.aggregate for r in s] for s in again] == [[r.aggregate for r in s] for s in stages]

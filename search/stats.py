"""Run statistics (`optsearch inspect RUN_DIR stats`), read from the store alone."""

from __future__ import annotations

from optsearch.primitives.liveness import dead_fraction
from optsearch.primitives.parser import parse
from optsearch.search.store import RunStore


def run_stats(store: RunStore) -> dict:
    state = store.load_state("search") or {}
    counters = state.get("counters", {})
    best = store.best_candidate()
    hits, evaluated = counters.get("cache_hits", 0), counters.get("evaluated", 0)
    screened = counters.get("screened", evaluated)  # runs from before hurdles: all full
    return {
        "proposed": counters.get("proposed", 0),
        "invalid": counters.get("invalid", 0),
        "unchanged": counters.get("unchanged", 0),
        "cache_hits": hits,
        "screened": screened,
        "evaluated": evaluated,
        "rung_evaluated": counters.get("rung_evaluated", 0),
        "rung_failed": counters.get("rung_failed", 0),
        "stopped": counters.get("stopped", 0),
        **duplicate_fractions(counters),
        "failed": counters.get("failed", 0),
        "restarts": counters.get("restarts", 0),
        "refined": counters.get("refined", 0),
        "refine_evaluations": counters.get("refine_evaluations", 0),
        "in_flight": len(store.in_flight()),
        "budget": state.get("budget"),
        "best_fitness": best["aggregate"] if best else None,
        "best_id": best["id"] if best else None,
        "cache_hit_rate": hits / (hits + screened) if hits + screened else 0.0,
        "dead_fraction": population_dead_fraction(store, state),
    }


def duplicate_fractions(counters: dict) -> dict:
    """Fractions of all proposals (mutation attempts included) that cost no evaluation because
    of each duplicate key: the structural hash rejects a child equal to its parent inside the
    mutator (`unchanged`) and a child equal to an earlier or in-flight program at dispatch;
    the behavioural fingerprint catches what the hash misses (algebraic equivalents)."""
    proposed = counters.get("proposed", 0)
    structural = counters.get("unchanged", 0) + counters.get("dup_structural", 0)
    fingerprint = counters.get("dup_fingerprint", 0)
    return {"removed_by_structural_hash": structural / proposed if proposed else 0.0,
            "removed_by_fingerprint": fingerprint / proposed if proposed else 0.0}


def population_dead_fraction(store: RunStore, state: dict) -> float:
    """Mean fraction of dead statements over the current populations (paper: 69.8% late)."""
    ids = [i for members in store.populations(state) for i in members]
    if not ids:
        return 0.0
    fractions = {}
    for i in set(ids):
        fractions[i] = dead_fraction(parse(store.candidate(i)["program"]))
    return sum(fractions[i] for i in ids) / len(ids)

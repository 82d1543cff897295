"""Funnel selection: re-check a run's best distinct programs on larger tasks.

The top distinct programs (by structural hash and behavioural fingerprint) go to the ~10x
meta-validation suite; only those beating the AdamW baseline there (aggregate > 1.0, AdamW
scores exactly 1.0 on every task by construction of the fitness) go on to the ~100x suite.
Results are stored in the run database (table `funnel`) so `inspect` can show them and a
re-run of the funnel only evaluates what is missing.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass

from optsearch.evaluator.fitness import Fitness
from optsearch.evaluator.suites import Suite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS funnel (
    candidate_id INTEGER NOT NULL,
    stage INTEGER NOT NULL,
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    aggregate REAL,
    stderr REAL,
    passed INTEGER NOT NULL,
    fitness_json TEXT NOT NULL,
    PRIMARY KEY (candidate_id, suite_version)
);
"""


@dataclass(frozen=True)
class StageResult:
    candidate_id: int
    stage: int
    suite: str
    aggregate: float
    stderr: float
    passed: bool


def stage_suite(base_suite: str, scale: int) -> Suite:
    """The meta-validation suite: the search suite's tasks at `scale` (10 or 100)."""
    return Suite.scaled(base_suite, scale)


def top_distinct(store, k: int) -> list:
    """The k best finished candidates, one per structural hash and per fingerprint."""
    rows = store.candidates("status = 'ok' AND source = 'evaluated'", order="aggregate DESC, id")
    chosen, seen = [], set()
    for row in rows:
        keys = {("h", row["structural_hash"]), ("f", row["fingerprint"])}
        if keys & seen:
            continue
        seen |= keys
        chosen.append(row)
        if len(chosen) == k:
            break
    return chosen


def mean_stderr(fitness: Fitness) -> tuple[float, float]:
    per_seed = fitness.seed_aggregates()
    if len(per_seed) < 2:
        return fitness.aggregate, math.nan
    return fitness.aggregate, statistics.stdev(per_seed) / math.sqrt(len(per_seed))


def evaluate_all(backend, programs: dict[int, str]) -> dict[int, Fitness]:
    """Fitness of every program (job id -> text) through a backend, in finish order."""
    for cid, text in programs.items():
        backend.submit(cid, text)
    results = {}
    while len(results) < len(programs):
        for cid, fitness, _worker in backend.poll(timeout_s=5.0):
            results[cid] = fitness
    return results


def _stored(store, suite_version: str) -> dict[int, StageResult]:
    rows = store.conn.execute("SELECT * FROM funnel WHERE suite_version = ?", (suite_version,))
    return {r["candidate_id"]: StageResult(r["candidate_id"], r["stage"], r["suite"],
                                           r["aggregate"], r["stderr"], bool(r["passed"]))
            for r in rows}


def _record(store, stage, suite, fitness: Fitness, cid) -> StageResult:
    mean, err = mean_stderr(fitness)
    passed = fitness.ok and mean > 1.0
    with store.transaction():
        store.conn.execute(
            "INSERT OR REPLACE INTO funnel VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (cid, stage, suite.name, suite.version, mean, err, int(passed),
             json.dumps(fitness.to_dict())))
    return StageResult(cid, stage, suite.name, mean, err, passed)


def run_funnel(store, backend_factory, base_suite: str, scales=(10, 100), top_k: int = 5,
               log=print) -> list[list[StageResult]]:
    """Run the stages in order; each stage sees only the previous stage's winners.

    backend_factory(suite) -> an evaluator backend for that suite (serial or Ray).
    Returns one list of StageResult per stage that ran.
    """
    store.conn.executescript(_SCHEMA)
    survivors = {row["id"]: row["program"] for row in top_distinct(store, top_k)}
    stages = []
    for stage, scale in enumerate(scales, start=1):
        if not survivors:
            break
        suite = stage_suite(base_suite, scale)
        done = _stored(store, suite.version)
        todo = {cid: text for cid, text in survivors.items() if cid not in done}
        log(f"funnel stage {stage}: {len(survivors)} program(s) on suite {suite.name} "
            f"({len(todo)} to evaluate)")
        if todo:
            with backend_factory(suite) as backend:
                for cid, fitness in evaluate_all(backend, todo).items():
                    done[cid] = _record(store, stage, suite, fitness, cid)
        results = sorted((done[cid] for cid in survivors), key=lambda r: -r.aggregate)
        stages.append(results)
        survivors = {r.candidate_id: survivors[r.candidate_id] for r in results if r.passed}
    return stages


def funnel_table(store) -> list:
    """Every stored funnel result (for inspect), best first within each stage."""
    store.conn.executescript(_SCHEMA)
    return list(store.conn.execute("SELECT * FROM funnel ORDER BY stage, aggregate DESC"))

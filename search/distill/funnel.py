"""Funnel selection: re-check a run's best distinct programs on larger tasks.

The top distinct programs (by structural hash and behavioural fingerprint) go to the ~10x
meta-validation suite; only those beating the AdamW baseline there (aggregate > 1.0, AdamW
scores exactly 1.0 on every task by construction of the fitness) go on to the ~100x suite.
Results are stored in the run store so `inspect` can show them and a re-run of the funnel
only evaluates what is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from optsearch.evaluator.fitness import Fitness
from optsearch.evaluator.noise import mean_stderr
from optsearch.evaluator.suites import Suite


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
    rows = store.funnel_results(suite_version)
    return {r["candidate_id"]: StageResult(r["candidate_id"], r["stage"], r["suite"],
                                           r["aggregate"], r["stderr"], bool(r["passed"]))
            for r in rows}


def _record(store, stage, suite, fitness: Fitness, cid) -> StageResult:
    mean, err = mean_stderr(fitness)
    passed = fitness.ok and mean > 1.0
    store.record_funnel_result(cid, stage, suite.name, suite.version, mean, err, passed,
                               json.dumps(fitness.to_dict()))
    return StageResult(cid, stage, suite.name, mean, err, passed)


def run_funnel(store, backend_factory, base_suite: str, scales=(10, 100), top_k: int = 5,
               log=print) -> list[list[StageResult]]:
    """Run the stages in order; each stage sees only the previous stage's winners.

    backend_factory(suite) -> an evaluator backend for that suite (serial or Ray).
    Returns one list of StageResult per stage that ran, best first; the store records them
    as the run's latest funnel round (which decides the run's winner).
    """
    survivors = {row["id"]: row["program"]
                 for row in store.ranked(evaluated_only=True, k=top_k)}
    stages, versions = [], []
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
        versions.append(suite.version)
        survivors = {r.candidate_id: survivors[r.candidate_id] for r in results if r.passed}
    store.record_funnel_round([(v, [r.candidate_id for r in results])
                               for v, results in zip(versions, stages)])
    return stages

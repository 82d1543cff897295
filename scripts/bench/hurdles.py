"""Progressive hurdles: programs screened per minute (on vs off) and the cost of being wrong.

    OMP_NUM_THREADS=1 .venv/bin/python -m scripts.bench.hurdles [--slice-min 2] [--slices 2]
        [--children 200] [--wrong-minutes 20] [--backend ray] [--workers 2] [--out DIR]

1. Throughput. Two default searches (AdamW warm start, default suite, same seed), one with
   `evaluation.hurdles` off and one on, run in interleaved slices of `--slice-min` minutes
   (off, on, on, off, ...: an ABBA order, so that a change in the machine's load hits both
   alike); each slice resumes its search where the last one stopped. Screened programs (that
   cost an evaluation, rung or full) per minute of search wall time, and the ratio on/off.
2. Cost of being wrong. From the final population of the hurdles-on search, draw
   `--children` new children (tournament + mutation, as the search does; duplicates of each
   other or of anything the run has seen are skipped, as the search would), evaluate each on
   the rung and in full, and count the children that would have reached the population's top
   quartile in full but are stopped at the hurdle (the driver's rule, from the members' rung
   scores), for several hurdle quantiles.
3. Population. For each search at the end of its slices: the members, how many have a
   fitness (and finished), how many distinct programs, how many are warm-start copies, the
   members' best and median fitness, the hurdle they set, and the best fitness the search
   found (at equal search time in both modes).
4. Duplicates. The fractions of proposals removed by the structural hash and the fingerprint
   in both searches, and how many more a fingerprint of the rung's results (the per-seed
   metrics, rounded: AutoML-Zero's functional equivalence check) would have caught in the
   hurdles-on search, and whether those programs had equal full fitness.

Figures depend on the machine's load; only ratios from one run mean much.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time

import numpy as np

from optsearch.primitives.hashing import fingerprint, structural_hash
from optsearch.primitives.printer import format_program
from optsearch.primitives.reference import load_reference
from optsearch.search.config import Config
from optsearch.search.driver import member_rung, resume_run, start_run
from optsearch.search.evolution import Individual, selection_value
from optsearch.search.hurdles import clears, population_hurdle
from optsearch.search.stats import run_stats
from optsearch.search.store import RunStore

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75)
FEC_DIGITS = 6


def search_config(hurdles: bool, args) -> Config:
    config = Config()
    config.search.seed = args.seed
    config.search.budget = 10**7  # time-boxed: each slice stops proposing at its deadline
    config.evaluation.backend, config.evaluation.workers = args.backend, args.workers
    config.evaluation.hurdles = hurdles
    config.evaluation.rung_fraction = args.rung_fraction
    config.evaluation.rung_kind = args.rung_kind
    config.evaluation.hurdle_quantile = args.hurdle_quantile
    return config.validate()


def run_slice(run_dir: str, hurdles: bool, minutes: float, args) -> dict:
    """One slice of a search; returns screened/evaluated counts and the search's wall time."""
    if os.path.exists(os.path.join(run_dir, "run.sqlite")):
        driver = resume_run(run_dir, budget=10**7)
    else:
        driver = start_run(run_dir, search_config(hurdles, args), load_reference("adamw"))
    before = dict(driver.counters)
    deadline = time.monotonic() + 60 * minutes

    def on_step(d):
        if time.monotonic() > deadline:
            d.budget = min(d.budget, d.counters["screened"] + len(d.pending))

    driver.on_step = on_step
    t0 = time.monotonic()
    driver.run()
    wall = time.monotonic() - t0
    after = dict(driver.counters)
    driver.close()
    return {"wall_s": wall, **{k: after[k] - before[k] for k in
                               ("screened", "evaluated", "rung_evaluated", "stopped")}}


def throughput(args, dirs: dict) -> dict:
    order = []
    for k in range(args.slices):
        order += [False, True] if k % 2 == 0 else [True, False]
    totals = {mode: {"wall_s": 0.0, "screened": 0, "evaluated": 0, "rung_evaluated": 0,
                     "stopped": 0} for mode in (False, True)}
    for hurdles in order:
        result = run_slice(dirs[hurdles], hurdles, args.slice_min, args)
        print(f"slice hurdles={'on' if hurdles else 'off'}: {json.dumps(result)}", flush=True)
        for key, value in result.items():
            totals[hurdles][key] += value
    out = {}
    for hurdles, t in totals.items():
        t["screened_per_min"] = 60 * t["screened"] / t["wall_s"]
        out["on" if hurdles else "off"] = t
    out["ratio_on_off"] = out["on"]["screened_per_min"] / out["off"]["screened_per_min"]
    return out


def draw_children(island, known: set, n: int, seed: int) -> list:
    """`n` new children of the island's population: tournament + mutation, skipping any whose
    structural hash or fingerprint is already known (the search would not evaluate them)."""
    rng, children, attempts = np.random.default_rng(seed), [], 0
    while len(children) < n and attempts < 100 * n:
        attempts += 1
        proposal = island.ask(rng)
        if proposal is None:
            continue
        keys = {"s:" + structural_hash(proposal.program), "f:" + _fingerprint(proposal.program)}
        if keys & known:
            continue
        known |= keys
        children.append(format_program(proposal.program))
    return children


def _fingerprint(program) -> str:
    try:
        return fingerprint(program)
    except Exception:  # noqa: BLE001 -- as the driver: no fingerprint, no behavioural key
        return "none"


def evaluate_both(backend, texts: list, minutes: float) -> list:
    """(rung fitness, full fitness) of the programs, in order, through the search's own
    backend, for as many as finish within `minutes` (the children are in random order, so
    the ones that finish are a fair sample)."""
    for i, text in enumerate(texts):
        backend.submit(-1 - i, text, True)
        backend.submit(i, text)
    results: dict = {}
    deadline = time.monotonic() + 60 * minutes
    while len(results) < 2 * len(texts) and time.monotonic() < deadline:
        for job_id, fitness, _ in backend.poll(1.0):
            results[job_id] = fitness
    return [(results[-1 - i], results[i]) for i in range(len(texts))
            if i in results and -1 - i in results]


def cost_of_wrong(run_dir: str, args) -> dict:
    driver = resume_run(run_dir)
    island = driver.islands[0]
    members = list(island.population)
    known = driver.store.cache_keys()
    known |= {"s:" + ind.structural_hash for ind in members}
    children = draw_children(island, known, args.children, args.seed + 1)
    t0 = time.monotonic()
    pairs = evaluate_both(driver.backend, children, args.wrong_minutes)
    cost_s = time.monotonic() - t0
    driver.close()
    full_members = [ind.fitness for ind in members if np.isfinite(ind.fitness)]
    if not full_members:
        raise SystemExit("the hurdles-on search has no population yet: run longer slices")
    top_quartile = float(np.quantile(full_members, 0.75))
    top = [i for i, (_, f) in enumerate(pairs) if f.status == "ok" and f.aggregate >= top_quartile]
    result = {"children_drawn": len(children), "children": len(pairs),
              "population": len(members),
              "population_with_fitness": len(full_members),
              "top_quartile_fitness": top_quartile, "children_in_top_quartile": len(top),
              "evaluation_wall_s": cost_s, "by_quantile": {}}
    for q in QUANTILES:
        hurdle = population_hurdle(members, q)
        passed = [clears(r.status, r.aggregate, hurdle) for r, _ in pairs]
        missed = [i for i in top if not passed[i]]
        result["by_quantile"][str(q)] = {
            "hurdle": hurdle, "pass_rate": sum(passed) / max(len(pairs), 1),
            "top_quartile_stopped": len(missed),
            "of_children": len(missed) / max(len(pairs), 1),
            "of_top_quartile": len(missed) / max(len(top), 1)}
    # every child's (rung status, rung score, full status, full fitness) and the members'
    # rung scores: enough to recompute the cost of being wrong for any other hurdle
    result["pairs"] = [(r.status, r.aggregate, f.status, f.aggregate) for r, f in pairs]
    result["member_rungs"] = [ind.rung for ind in members]
    rung_scores = [r.aggregate for r, _ in pairs]
    full_scores = [f.aggregate for _, f in pairs]
    both_ok = [i for i, (r, f) in enumerate(pairs) if r.status == f.status == "ok"]
    if len(both_ok) > 2:
        ranks = [np.argsort(np.argsort([s[i] for i in both_ok])) for s in (rung_scores, full_scores)]
        result["spearman_rung_full_ok"] = float(np.corrcoef(*ranks)[0, 1])
    result["rung_failed_full_ok"] = sum(r.status != "ok" and f.status == "ok" for r, f in pairs)
    return result


def population(run_dir: str, quantile: float) -> dict:
    """The composition of island 0's population as the search left it, read from the store."""
    store = RunStore.open(run_dir, readonly=True)
    try:
        state, stats = store.load_state("search"), run_stats(store)
        rows = [store.candidate(i) for i in store.populations(state)[0]]
        members = [Individual(r["id"], None, selection_value(r["aggregate"]),
                              r["structural_hash"],
                              member_rung(store, r["id"], r["duplicate_of"])) for r in rows]
    finally:
        store.close()
    fitness = [m.fitness for m in members if np.isfinite(m.fitness)]
    return {"members": len(members), "with_fitness": len(fitness),
            "ok": sum(r["status"] == "ok" for r in rows),
            "stopped": sum(r["status"] == "stopped" for r in rows),
            "distinct_programs": len({m.structural_hash for m in members}),
            "warm_start_copies": sum(r["mutation"] == "init" for r in rows),
            "best_member": max(fitness, default=None),
            "median_member": float(np.median(fitness)) if fitness else None,
            "hurdle": population_hurdle(members, quantile),
            "best_found": stats["best_fitness"], "restarts": stats["restarts"],
            "screened": stats["screened"], "evaluated_in_full": stats["evaluated"]}


def fec_key(fitness_json: str) -> str | None:
    """The rung's functional-equivalence key: per-task, per-seed metrics to FEC_DIGITS."""
    fitness = json.loads(fitness_json)
    if fitness.get("status") != "ok" or not fitness.get("tasks"):
        return None
    values = [f"{m:.{FEC_DIGITS - 1}e}" for _, t in sorted(fitness["tasks"].items())
              for m in t["per_seed"]]
    return hashlib.blake2b(",".join(values).encode(), digest_size=12).hexdigest()


def duplicates(run_dir: str) -> dict:
    """What a rung-stream fingerprint would add to the structural hash and fingerprint."""
    store = RunStore.open(run_dir, readonly=True)
    rows = store.evaluated_rungs()
    stats = run_stats(store)
    store.close()
    first: dict = {}
    caught, full_pairs, full_equal = 0, 0, 0
    for cid, fitness_json, aggregate, source in rows:
        key = fec_key(fitness_json)
        if key is None:
            continue
        if key in first:
            caught += 1
            earlier = first[key]
            if aggregate is not None and earlier is not None and source == "evaluated":
                full_pairs += 1
                full_equal += abs(aggregate - earlier) <= 1e-6 * max(abs(earlier), 1e-12)
        else:
            first[key] = aggregate
    return {"rung_evaluated": len(rows), "rung_fec_would_catch": caught,
            "of_proposals": caught / max(stats["proposed"], 1),
            "caught_with_both_full": full_pairs, "of_which_equal_full_fitness": full_equal}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slice-min", type=float, default=2.0)
    ap.add_argument("--slices", type=int, default=2, help="slices per mode (ABBA order)")
    ap.add_argument("--children", type=int, default=200)
    ap.add_argument("--wrong-minutes", type=float, default=20.0,
                    help="time cap for evaluating the children (rung and full)")
    ap.add_argument("--backend", default="ray", choices=("ray", "serial"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rung-fraction", type=float, default=Config().evaluation.rung_fraction)
    ap.add_argument("--rung-kind", default=Config().evaluation.rung_kind,
                    choices=("compressed", "tail"))
    ap.add_argument("--hurdle-quantile", type=float,
                    default=Config().evaluation.hurdle_quantile)
    ap.add_argument("--out", help="directory for the two runs (default: a temporary one)")
    args = ap.parse_args(argv)
    base = args.out or tempfile.mkdtemp(prefix="bench-hurdles-")
    dirs = {False: os.path.join(base, "off"), True: os.path.join(base, "on")}
    report = {"args": vars(args), "throughput": throughput(args, dirs)}
    print(json.dumps(report["throughput"], indent=1), flush=True)
    report["population"] = {mode: population(d, args.hurdle_quantile)
                            for mode, d in (("off", dirs[False]), ("on", dirs[True]))}
    for mode, p in report["population"].items():
        print(f"population hurdles={mode}: {json.dumps(p)}", flush=True)
    report["dedup"] = {mode: {k: v for k, v in run_stats_of(d).items()
                              if k.startswith("removed_by") or k in ("proposed", "cache_hits")}
                       for mode, d in (("off", dirs[False]), ("on", dirs[True]))}
    report["dedup"]["rung_fec"] = duplicates(dirs[True])
    print(json.dumps(report["dedup"], indent=1), flush=True)
    report["cost_of_wrong"] = cost_of_wrong(dirs[True], args)
    print(json.dumps({"cost_of_wrong": {k: v for k, v in report["cost_of_wrong"].items()
                                        if k not in ("pairs", "member_rungs")}}, indent=1))
    with open(os.path.join(base, "report.json"), "w") as fh:
        json.dump(report, fh, indent=1)
    print(f"runs and report.json in {base}")
    return 0


def run_stats_of(run_dir: str) -> dict:
    store = RunStore.open(run_dir, readonly=True)
    try:
        return run_stats(store)
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())

"""Which rung? The cost of being wrong and the screening gain of several rungs, on one real
population.

    OMP_NUM_THREADS=1 .venv/bin/python -m scripts.bench.rung_choice RUN_DIR \
        [--fractions 0.125,0.25,0.5] [--quantiles 0.25,0.5] [--children 200] [--seed 1]

RUN_DIR is a finished search run (hurdles on or off; it is copied, never changed). From its first
island's population, `--children` new children are drawn as the search draws them
(tournament + mutation, duplicates of each other or of anything the run has seen skipped:
scripts.bench.hurdles.draw_children). Every child is trained in full once, and every child
and every member on each rung (the suite at `fraction` of its steps, all seeds), in this one
process, one program at a time, so the seconds are comparable. Then, for each rung and
hurdle quantile (the driver's rule: the quantile of the members' rung scores):
  * cost of being wrong: children that reach the members' top quartile in full but are
    stopped at the hurdle, out of the top-quartile children;
  * pass rate: children that clear the hurdle;
  * screening gain: seconds per child without hurdles (its full training) over seconds per
    child with them (its rung, plus its full training if it passes), from the measured
    seconds of these very children -- the programs screened per minute, hurdles on / off,
    that the search would get from this population, without the driver's own overhead;
  * Spearman rank correlation of rung and full scores over the children that finish both.
Writes a JSON report with every child's scores and seconds (`--out`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time

import numpy as np

from optsearch.evaluator.serial_backend import SerialBackend
from optsearch.search.config import load
from optsearch.search.driver import resume_run
from optsearch.search.hurdles import clears
from scripts.bench.hurdles import draw_children


def population(run_dir: str, n_children: int, seed: int):
    """(member programs, member full fitness, child programs) of a copy of the run."""
    copy = os.path.join(tempfile.mkdtemp(prefix="rung-choice-"), "run")
    shutil.copytree(run_dir, copy)
    driver = resume_run(copy)
    try:
        island = driver.islands[0]
        members = list(island.population)
        known = driver.store.cache_keys() | {"s:" + ind.structural_hash for ind in members}
        texts = [driver.store.candidate(ind.id)["program"] for ind in members]
        children = draw_children(island, known, n_children, seed)
    finally:
        driver.close()
        shutil.rmtree(os.path.dirname(copy), ignore_errors=True)
    return texts, [ind.fitness for ind in members], children


def timed(backend: SerialBackend, texts: list, rung: bool) -> list:
    """(status, score, seconds) of each program, trained one at a time in this process."""
    out = []
    for text in texts:
        t0 = time.perf_counter()
        fitness = backend.evaluate_job(text, rung)
        out.append((fitness.status, fitness.aggregate, time.perf_counter() - t0))
    return out


def spearman(a, b) -> float | None:
    if len(a) < 3:
        return None
    ranks = [np.argsort(np.argsort(x)) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def judge(member_fitness, member_rungs, full, rungs, quantile: float) -> dict:
    """The driver's hurdle on these rung scores, and what it costs and saves."""
    scores = [r[1] for f, r in zip(member_fitness, member_rungs)
              if r[0] == "ok" and math.isfinite(f)]
    hurdle = float(np.quantile(scores, quantile, method="lower")) if scores else None
    top_quartile = float(np.quantile([f for f in member_fitness if math.isfinite(f)], 0.75))
    passed = [clears(r[0], r[1], hurdle) for r in rungs]
    top = [i for i, f in enumerate(full) if f[0] == "ok" and f[1] >= top_quartile]
    stopped = [i for i in top if not passed[i]]
    seconds_off = sum(f[2] for f in full)
    seconds_on = sum(r[2] for r in rungs) + sum(f[2] for f, p in zip(full, passed) if p)
    return {"hurdle": hurdle, "top_quartile_fitness": top_quartile,
            "pass_rate": sum(passed) / len(passed),
            "top_quartile_children": len(top), "top_quartile_stopped": len(stopped),
            "of_top_quartile": len(stopped) / max(len(top), 1),
            "of_children": len(stopped) / len(passed),
            "screening_gain": seconds_off / seconds_on}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--fractions", default="0.125,0.25,0.5")
    ap.add_argument("--quantiles", default="0.25,0.5")
    ap.add_argument("--children", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1, help="seed of the children's draw")
    ap.add_argument("--out", help="JSON report (default: none)")
    args = ap.parse_args(argv)
    fractions = [float(x) for x in args.fractions.split(",")]
    quantiles = [float(x) for x in args.quantiles.split(",")]
    members, member_fitness, children = population(args.run_dir, args.children, args.seed)
    print(f"{len(members)} members, {len(children)} children", flush=True)
    evaluation = load(os.path.join(args.run_dir, "config.toml")).evaluation
    seeds = tuple(range(evaluation.seeds))
    report = {"args": vars(args), "members": len(members), "children": len(children),
              "by_fraction": {}}
    full = timed(SerialBackend(evaluation.suite, seeds), children, rung=False)
    report["full"] = full
    print(f"full: {sum(f[2] for f in full):.0f} s for {len(full)} children", flush=True)
    for fraction in fractions:
        backend = SerialBackend(evaluation.suite, seeds, rung_fraction=fraction)
        member_rungs, rungs = timed(backend, members, True), timed(backend, children, True)
        both = [i for i in range(len(full)) if full[i][0] == rungs[i][0] == "ok"]
        entry = {"spearman_rung_full": spearman([rungs[i][1] for i in both],
                                                [full[i][1] for i in both]),
                 "rung_failed_full_ok": sum(r[0] != "ok" and f[0] == "ok"
                                            for r, f in zip(rungs, full)),
                 "by_quantile": {str(q): judge(member_fitness, member_rungs, full, rungs, q)
                                 for q in quantiles},
                 "member_rungs": member_rungs, "rungs": rungs}
        report["by_fraction"][str(fraction)] = entry
        for q, j in entry["by_quantile"].items():
            print(f"rung {fraction:g}, quantile {q}: stopped {j['top_quartile_stopped']} of "
                  f"{j['top_quartile_children']} top-quartile children, pass rate "
                  f"{j['pass_rate']:.1%}, screening gain {j['screening_gain']:.2f}x, "
                  f"Spearman {_fmt(entry['spearman_rung_full'])}", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Calibrate a proxy task: does it rank tuned Lion above tuned Signum and tuned AdamW?

For each optimizer family a small grid (peak lr x betas) is evaluated on tuning seeds; the
best point of each family is then re-run on *fresh* seeds, so the reported mean is not
inflated by picking the luckiest grid point (winner's curse). Also reports the untuned AdamW
warm start (betas 0.9/0.999, lr 1e-3, wd 0.01) that the search starts from.

    .venv/bin/python -m scripts.research.calibrate --task digits_mlp --seeds 8 --grid small
    .venv/bin/python -m scripts.research.calibrate --task digits_mlp --set steps=3000 --set batch_size=64

Results are printed as a table and appended as JSON lines to --out.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from optsearch.evaluator.noise import standard_error
from optsearch.proxy_tasks import get_task
from optsearch.proxy_tasks.rules import AdamW, Lion, Signum

GRIDS = {
    "small": {
        "adamw": [AdamW(lr=lr, beta2=b2) for lr in (1e-3, 3e-3, 1e-2, 3e-2) for b2 in (0.99, 0.999)],
        "signum": [Signum(lr=lr, beta=b) for lr in (3e-4, 1e-3, 3e-3) for b in (0.9, 0.95, 0.99)],
        "lion": [Lion(lr=lr, beta1=b1, beta2=b2) for lr in (1e-4, 3e-4, 1e-3, 3e-3)
                 for b1, b2 in ((0.9, 0.99), (0.95, 0.98))],
    },
    # first wide grid; Lion's best lr sat on its upper edge (3e-3), hence "wide" below
    "wide0": {
        "adamw": [AdamW(lr=lr, beta2=b2) for lr in (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
                  for b2 in (0.99, 0.999)],
        "signum": [Signum(lr=lr, beta=b) for lr in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
                   for b in (0.9, 0.95, 0.99)],
        "lion": [Lion(lr=lr, beta1=b1, beta2=b2) for lr in (3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
                 for b1, b2 in ((0.9, 0.99), (0.95, 0.98), (0.9, 0.999))],
    },
    "wide": {
        "adamw": [AdamW(lr=lr, beta2=b2) for lr in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
                  for b2 in (0.99, 0.999)],
        "signum": [Signum(lr=lr, beta=b) for lr in (3e-4, 1e-3, 3e-3, 1e-2)
                   for b in (0.9, 0.95, 0.99)],
        "lion": [Lion(lr=lr, beta1=b1, beta2=b2) for lr in (3e-4, 1e-3, 3e-3, 1e-2)
                 for b1, b2 in ((0.9, 0.99), (0.95, 0.98), (0.9, 0.999))],
    },
}
# a narrow grid for expensive runs (long-horizon char LM), centred on the small-grid optima
GRIDS["narrow"] = {
    "adamw": [AdamW(lr=lr, beta2=b2) for lr in (3e-3, 1e-2) for b2 in (0.99, 0.999)],
    "signum": [Signum(lr=lr, beta=b) for lr in (1e-3, 3e-3) for b in (0.9, 0.95)],
    "lion": [Lion(lr=lr, beta1=b1, beta2=b2) for lr in (3e-4, 1e-3, 3e-3)
             for b1, b2 in ((0.9, 0.99), (0.95, 0.98))],
}
# short-memory betas: on every CPU-cheap task Lion picked the shortest betas offered above
GRIDS["short"] = {
    "adamw": GRIDS["wide"]["adamw"],
    "signum": [Signum(lr=lr, beta=b) for lr in (1e-3, 3e-3, 1e-2) for b in (0.8, 0.9, 0.95)],
    "lion": [Lion(lr=lr, beta1=b1, beta2=b2) for lr in (1e-3, 3e-3, 1e-2)
             for b1, b2 in ((0.9, 0.95), (0.8, 0.95), (0.8, 0.9), (0.5, 0.9), (0.9, 0.98))],
}
# "short" put both sign methods on its short-memory edge; this one extends that edge
GRIDS["short2"] = {
    "adamw": GRIDS["wide"]["adamw"],
    "signum": [Signum(lr=lr, beta=b) for lr in (3e-3, 1e-2, 3e-2) for b in (0.0, 0.5, 0.7, 0.8, 0.9)],
    "lion": [Lion(lr=lr, beta1=b1, beta2=b2) for lr in (3e-3, 1e-2, 3e-2)
             for b1, b2 in ((0.5, 0.9), (0.3, 0.9), (0.5, 0.8), (0.7, 0.95), (0.8, 0.95))],
}
UNTUNED_ADAMW = AdamW()   # the search's warm start: betas 0.9/0.999, lr 1e-3, wd 0.01


def parse_overrides(pairs):
    """--set key=value pairs -> config overrides (int, float, bool, tuple or str)."""
    out = {}
    for pair in pairs:
        key, raw = pair.split("=", 1)
        raw = {"True": "true", "False": "false"}.get(raw, raw)  # a str "False" would be truthy
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def evaluate(job):
    """One rule on one set of seeds; a top-level function so worker processes can run it."""
    task_name, scale, overrides, rule, seeds, *device = job    # device: optional, "cpu"
    task = get_task(task_name, scale, **overrides)
    res = task.run(rule, seeds, task.load_data(), device=device[0] if device else "cpu")
    return {"rule": repr(rule), "status": res.status, "metric": res.metric,
            "details": res.details, "seconds": res.seconds}


def summary(values):
    """Mean and standard error over seeds."""
    return float(np.mean(values)), standard_error(values)


def run_jobs(jobs, workers):
    if workers <= 1:
        return [evaluate(j) for j in jobs]
    # CUDA cannot be used in a forked child; spawned workers start clean (and cost ~2 s each)
    cuda = any(len(j) > 5 and str(j[5]).startswith("cuda") for j in jobs)
    context = multiprocessing.get_context("spawn") if cuda else None
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(evaluate, jobs))


def calibrate(args):
    overrides = parse_overrides(args.set)
    tune_seeds = list(range(args.seeds))
    test_seeds = list(range(1000, 1000 + args.seeds))   # fresh seeds for the final numbers
    grid = GRIDS[args.grid]
    families = [f for f in grid if f in args.families]
    jobs = [(args.task, args.scale, overrides, rule, tune_seeds)
            for fam in families for rule in grid[fam]]
    tuned = run_jobs(jobs, args.workers)
    best = {}
    for fam in families:
        rows = [r for r in tuned if r["rule"] in {repr(x) for x in grid[fam]}]
        rule_index = {repr(x): x for x in grid[fam]}
        top = min(rows, key=lambda r: summary(r["metric"])[0])
        best[fam] = rule_index[top["rule"]]
    finals = [("adamw_untuned", UNTUNED_ADAMW)] + [(f"{f}_tuned", best[f]) for f in families]
    final_jobs = [(args.task, args.scale, overrides, rule, test_seeds) for _, rule in finals]
    results = run_jobs(final_jobs, args.workers)
    return overrides, tuned, list(zip([n for n, _ in finals], results))


def report(args, overrides, tuned, finals):
    head = f"task={args.task} scale={args.scale} overrides={overrides} seeds={args.seeds}"
    lines = [f"{head} grid={args.grid}"]
    for r in tuned:
        m, se = summary(r["metric"])
        lines.append(f"  tune {r['rule']:<70} {r['status']:<9} {m:.4f} ± {se:.4f}  {r['seconds']:.2f}s")
    for name, r in finals:
        m, se = summary(r["metric"])
        extra = " ".join(f"{k}={summary(v)[0]:.4f}±{summary(v)[1]:.4f}"
                         for k, v in r["details"].items())
        lines.append(f"FINAL {name:<14} {r['rule']:<70} {r['status']:<8} {m:.4f} ± {se:.4f} "
                     f"[{extra}] cost {r['seconds']:.2f}s")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--grid", choices=sorted(GRIDS), default="small")
    ap.add_argument("--families", nargs="+", default=["adamw", "signum", "lion"])
    ap.add_argument("--set", action="append", default=[], help="config override key=value")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default="runs/calibration/results.jsonl")
    args = ap.parse_args(argv)
    t0 = time.time()
    overrides, tuned, finals = calibrate(args)
    text = report(args, overrides, tuned, finals)
    print(text + f"\nwall {time.time() - t0:.1f}s", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps({"args": vars(args), "overrides": overrides, "tuned": tuned,
                            "finals": finals, "date": time.strftime("%Y-%m-%d")}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score program variants on a suite exactly as the search does: is sign momentum an attractor?

Calibration (scripts/research/calibrate.py) compares hand-written, *tuned* rules. The search instead
sees programs whose constants it must find by mutation, starting from the AdamW program
(lr 1e-3). This probe evaluates, through the very evaluator the search uses (normalised
fitness, AdamW = 1.0), the programs a search passes through on its way to Lion: AdamW with
`sign` inserted (one mutation away), Signum and Lion at the warm start's lr and at tuned
ones. Prints mean ± standard error over seeds of the aggregate, and per task.

    .venv/bin/python -m scripts.research.probe_suite --suite default --seeds 8 --workers 2
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from optsearch.primitives.reference import reference_text

ADAMW_SIGN = reference_text("adamw").replace(
    "    update = m / sqrt_v\n", "    update = m / sqrt_v\n    update = sign(update)\n")


def lion(lr: float, b1: float, b2: float, wd: float) -> str:
    return (reference_text("lion").replace("0.0001", repr(lr)).replace("0.1", repr(wd))
            .replace("m, 0.9)", f"m, {b1!r})").replace("m, 0.99)", f"m, {b2!r})"))


def signum(lr: float, beta: float, wd: float) -> str:
    return (reference_text("signum").replace("0.0001", repr(lr)).replace("w * 0.1", f"w * {wd!r}")
            .replace("m, 0.9)", f"m, {beta!r})"))


def adamw(lr: float, b2: float) -> str:
    return reference_text("adamw").replace("lr * 0.001", f"lr * {lr!r}").replace(
        "v, 0.999)", f"v, {b2!r})")


VARIANTS = {
    "adamw (warm start)": reference_text("adamw"),
    "adamw + sign (1 mutation)": ADAMW_SIGN,
    "adamw lr1e-2 b2 .99": adamw(1e-2, 0.99),
    "adamw lr3e-2 b2 .99": adamw(3e-2, 0.99),
    "adamw lr1e-1 b2 .99": adamw(1e-1, 0.99),
    "signum lr1e-3 b.9 wd.01": signum(1e-3, 0.9, 0.01),
    "signum lr3e-3 b.9 wd.1": signum(3e-3, 0.9, 0.1),
    "signum lr1e-2 b.9 wd.1": signum(1e-2, 0.9, 0.1),
    "signum lr1e-2 b.5 wd.1": signum(1e-2, 0.5, 0.1),
    "signum lr3e-2 b.9 wd.1": signum(3e-2, 0.9, 0.1),
    "signsgd lr1e-2 wd.1": signum(1e-2, 0.0, 0.1),
    "signsgd lr2e-2 wd.1": signum(2e-2, 0.0, 0.1),
    "signsgd lr3e-2 wd.01": signum(3e-2, 0.0, 0.01),
    "lion lr1e-4 .9/.99 wd.1 (ref)": lion(1e-4, 0.9, 0.99, 0.1),
    "lion lr1e-3 .9/.99 wd.01": lion(1e-3, 0.9, 0.99, 0.01),
    "lion lr3e-3 .9/.99 wd.1": lion(3e-3, 0.9, 0.99, 0.1),
    "lion lr1e-2 .5/.9 wd.1": lion(1e-2, 0.5, 0.9, 0.1),
    "lion lr3e-3 .8/.95 wd.1": lion(3e-3, 0.8, 0.95, 0.1),
    "lion lr1e-2 .9/.99 wd.1": lion(1e-2, 0.9, 0.99, 0.1),
    "lion lr3e-2 .5/.9 wd.1": lion(3e-2, 0.5, 0.9, 0.1),
}


def _score(job):
    name, text, suite, seeds = job
    from optsearch.evaluator.evaluate import evaluate
    from optsearch.evaluator.noise import mean_stderr

    fit = evaluate(text, suite=suite, seeds=seeds)
    mean, se = mean_stderr(fit) if fit.ok else (fit.aggregate, 0.0)
    tasks = {k: t.score for k, t in fit.tasks.items()}
    return name, fit.status, mean, se, tasks, fit.cost_s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="default")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--task", help="probe one task instead of a named suite (with --set)")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], help="task config key=value")
    args = ap.parse_args(argv)
    from optsearch.evaluator.baseline import baseline_metrics
    from optsearch.evaluator.suites import Suite
    from scripts.research.calibrate import parse_overrides

    if args.task:
        args.suite = Suite.custom(f"probe-{args.task}",
                                  [(args.task, args.scale, parse_overrides(args.set))])

    seeds = tuple(range(args.seeds))
    baseline_metrics(args.suite, seeds)     # once, before the workers race to compute it
    jobs = [(n, t, args.suite, seeds) for n, t in VARIANTS.items()]
    t0 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        for name, status, mean, se, tasks, cost in pool.map(_score, jobs):
            per_task = " ".join(f"{k}={v:.3f}" for k, v in tasks.items())
            print(f"{name:32s} {status:8s} {mean:6.3f} ± {se:.3f}  [{per_task}]  {cost:.1f}s",
                  flush=True)
    print(f"suite {args.suite!r}, seeds {args.seeds}, wall {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

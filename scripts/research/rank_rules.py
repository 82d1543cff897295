"""Rank update-rule *variants* on a task or a suite, each with its own tuned learning rate.

calibrate.py answers "tuned AdamW vs tuned Signum vs tuned Lion" with one winner per family.
Looking for a suite on which Lion-form ranks first needs a finer question: which variant
(signSGD, Signum at each beta, Lion at each beta pair, AdamW at each beta2) wins once each has
its best learning rate, and by how many standard errors?

Each variant's lr is chosen on the tuning seeds 0..N-1 from a log grid (3 points per decade);
the chosen point is re-run on fresh seeds 1000.. (no winner's curse) and the table is sorted
by that fresh-seed result. With one task the ranking is by the task's raw metric. With
several (`--tasks A B ...`) one lr per variant serves every task -- the search also needs one
program for the whole suite -- and the ranking is by the search's fitness: per seed and task
the ratio to the untuned AdamW warm start (evaluator.fitness.normalise, capped), averaged over
tasks (`--aggregate geomean`, the evaluator's rule, or `mean`).

    .venv/bin/python -m scripts.research.rank_rules --tasks noisy_quadratic:tail=3.0 --seeds 8
    .venv/bin/python -m scripts.research.rank_rules --tasks noisy_quadratic:tail=2.0,steps=4000 \
        digits_mlp --seeds 8
    .venv/bin/python -m scripts.research.rank_rules --tasks noisy_quadratic teacher_student \
        --only adamw lion --program runs/RUN/simplified.py

`--program FILE` adds a program file (e.g. what a search found) as a variant "prog:NAME": its
whole update is multiplied by lr / PROGRAM_LR0, so the grid scans factors of the program as
found (factor 1 at lr = 1e-2, the middle of the default grid). That is how to calibrate a
suite against the search's own favourites, not only against hand-written rules.

A task spec is NAME[@SCALE][:key=value,key=value]. A chosen lr on the edge of its grid is
flagged '<' or '>' (possibly under-tuned in that direction). `z` compares each variant with
the top one by the unpaired standard error; `zp` pairs them seed by seed (same seeds, same
initialisation and data for every variant), which removes the seed-to-seed spread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from optsearch.evaluator.fitness import normalise
from optsearch.proxy_tasks.rules import AdamW, AdamWBiasCorrected, Lion, PowerSGD, Signum
from scripts.research.calibrate import UNTUNED_ADAMW, parse_overrides, run_jobs, summary


def lr_grid(per_decade: int, lo: float, hi: float) -> list[float]:
    """Log grid of learning rates in [lo, hi], `per_decade` points per factor of 10."""
    first, last = math.floor(math.log10(lo) * per_decade), math.ceil(math.log10(hi) * per_decade)
    grid = [float(f"{10 ** (e / per_decade):.3g}") for e in range(first, last + 1)]
    return [lr for lr in grid if lo * 0.999 <= lr <= hi * 1.001]


VARIANTS = {
    "adamw .9/.99": lambda lr: AdamW(lr=lr, beta2=0.99),
    "adamw .9/.999": lambda lr: AdamW(lr=lr, beta2=0.999),
    "signsgd": lambda lr: Signum(lr=lr, beta=0.0),
    "signum .5": lambda lr: Signum(lr=lr, beta=0.5),
    "signum .9": lambda lr: Signum(lr=lr, beta=0.9),
    "signum .95": lambda lr: Signum(lr=lr, beta=0.95),
    "signum .99": lambda lr: Signum(lr=lr, beta=0.99),
    "lion .5/.9": lambda lr: Lion(lr=lr, beta1=0.5, beta2=0.9),
    "lion .8/.95": lambda lr: Lion(lr=lr, beta1=0.8, beta2=0.95),
    "lion .9/.99": lambda lr: Lion(lr=lr, beta1=0.9, beta2=0.99),
    "lion .95/.98": lambda lr: Lion(lr=lr, beta1=0.95, beta2=0.98),
    "lion .9/.999": lambda lr: Lion(lr=lr, beta1=0.9, beta2=0.999),
    # weight decay variants (the defaults above: AdamW 0.01, sign methods 0.1)
    "adamw .9/.999 wd0": lambda lr: AdamW(lr=lr, wd=0.0),
    "adamw .9/.999 wd.1": lambda lr: AdamW(lr=lr, wd=0.1),
    "adamw .9/.99 wd.1": lambda lr: AdamW(lr=lr, beta2=0.99, wd=0.1),
    "lion .8/.95 wd0": lambda lr: Lion(lr=lr, beta1=0.8, beta2=0.95, wd=0.0),
    "lion .8/.95 wd.3": lambda lr: Lion(lr=lr, beta1=0.8, beta2=0.95, wd=0.3),
    "lion .9/.99 wd.3": lambda lr: Lion(lr=lr, beta1=0.9, beta2=0.99, wd=0.3),
    "signum .9 wd.3": lambda lr: Signum(lr=lr, beta=0.9, wd=0.3),
    # torch.optim.AdamW (bias-corrected; the variants above follow the uncorrected program)
    "adamwbc .9/.999": lambda lr: AdamWBiasCorrected(lr=lr),
    "adamwbc .9/.99 wd.1": lambda lr: AdamWBiasCorrected(lr=lr, beta2=0.99, wd=0.1),
    # what the searches found on heavy-tailed noise: compress the gradient, keep no state
    "cbrt-sgd": lambda lr: PowerSGD(lr=lr, p=1.0 / 3.0),
}


def family(name: str) -> str:
    return name.split()[0]


# the default table: the original families at their default weight decays
DEFAULT_VARIANTS = [n for n in VARIANTS
                    if "wd" not in n and family(n) not in ("cbrt-sgd", "adamwbc")]


PROGRAM_LR0 = 1e-2


class ProgramRule:
    """A program as a variant: bench_generalization's ScaledRule with factor lr / PROGRAM_LR0.
    Holds the text and compiles on first use, so it pickles into worker processes."""

    def __init__(self, label: str, text: str, lr: float):
        self.label, self.text, self.lr = label, text, float(lr)
        self._rule = None

    def _compiled(self):
        if self._rule is None:
            from optsearch.evaluator.train import compile_checked
            from scripts.research.generalization import ScaledRule
            self._rule = ScaledRule(compile_checked(self.text), self.lr / PROGRAM_LR0)
        return self._rule

    @property
    def n_slots(self) -> int:
        return self._compiled().n_slots

    def __call__(self, w, g, state, lr):
        return self._compiled()(w, g, state, lr)

    def __getstate__(self):
        return {**self.__dict__, "_rule": None}

    def __repr__(self):
        return f"ProgramRule({self.label}, lr={self.lr:g})"


def add_programs(paths) -> list[str]:
    """Register each program file as a variant; returns the variant names."""
    from scripts.research.generalization import load_program

    names = []
    for path in paths:
        label, text = load_program(path)
        name = f"prog:{label}"
        VARIANTS[name] = lambda lr, label=label, text=text: ProgramRule(label, text, lr)
        names.append(name)
    return names


def parse_task(spec: str):
    """'name@10:k=v,k=v' -> (name, scale, overrides)."""
    head, _, tail = spec.partition(":")
    name, _, scale = head.partition("@")
    return name, int(scale or 1), parse_overrides([kv for kv in tail.split(",") if kv])


class Scorer:
    """Per-seed fitness of results against the untuned AdamW warm start, as the search sees it."""

    def __init__(self, base_results, aggregate: str, cap: float):
        self.base = [np.asarray(r["metric"], float) for r in base_results]
        self.aggregate, self.cap = aggregate, cap

    def per_seed(self, results) -> np.ndarray:
        """[seeds] aggregate over tasks; a failed task scores 0 on every seed (as in Fitness)."""
        scores = []
        for r, base in zip(results, self.base):
            ok = r["status"] == "ok"
            scores.append([self._score(m, b) if ok else 0.0 for m, b in zip(r["metric"], base)])
        scores = np.asarray(scores)
        if self.aggregate == "geomean":
            return np.exp(np.log(np.maximum(scores, 1e-6)).mean(axis=0))
        return scores.mean(axis=0)


    def _score(self, metric: float, base: float) -> float:
        # normalise() caps at SCORE_CAP like the search; uncapped keeps a saturated task ranked
        return normalise(metric, base, True) if self.cap else base / max(metric, 1e-12)


def _jobs(tasks, rules, seeds, device="cpu"):
    return [(n, s, o, rule, seeds, device) for rule in rules for n, s, o in tasks]


def rank(args):
    tasks = [parse_task(t) for t in args.tasks]
    tune, fresh = list(range(args.seeds)), list(range(1000, 1000 + args.seeds))
    programs = add_programs(args.program)
    names = ([n for n in VARIANTS if family(n) in args.only or n in args.only] if args.only
             else list(DEFAULT_VARIANTS))
    names += [n for n in programs if n not in names]
    grid = lr_grid(args.per_decade, args.lr_min, args.lr_max)
    rules = [VARIANTS[n](lr) for n in names for lr in grid]
    dev = args.device
    out = run_jobs(_jobs(tasks, [UNTUNED_ADAMW], tune, dev) + _jobs(tasks, rules, tune, dev),
                   args.workers)
    T = len(tasks)
    tune_scorer = Scorer(out[:T], args.aggregate, args.cap)
    best = {}
    for i, name in enumerate(names):
        cells = [out[T + (i * len(grid) + j) * T: T + (i * len(grid) + j + 1) * T]
                 for j in range(len(grid))]
        values = [tune_scorer.per_seed(c).mean() for c in cells]
        j = int(np.argmax(values))
        edge = "<" if j == 0 else ">" if j == len(grid) - 1 else " "
        best[name] = (grid[j], edge, float(values[j]))
    finals = run_jobs(_jobs(tasks, [UNTUNED_ADAMW], fresh, dev)
                      + _jobs(tasks, [VARIANTS[n](best[n][0]) for n in names], fresh, dev),
                      args.workers)
    fresh_scorer = Scorer(finals[:T], args.aggregate, args.cap)
    rows = {n: finals[T + i * T: T + (i + 1) * T] for i, n in enumerate(names)}
    return tasks, best, {n: (fresh_scorer.per_seed(r), r) for n, r in rows.items()}


def report(args, tasks, best, rows) -> str:
    stats = {n: summary(s) for n, (s, _) in rows.items()}
    order = sorted(rows, key=lambda n: -stats[n][0])
    top_m, top_se = stats[order[0]]
    top_seeds = rows[order[0]][0]
    head = f"tasks={args.tasks} seeds={args.seeds} aggregate={args.aggregate}"
    lines = [head + " (fitness vs untuned AdamW; higher is better)"]
    for n in order:
        m, se = stats[n]
        spread = math.hypot(se, top_se)
        z = (m - top_m) / spread if n != order[0] and spread > 0 else 0.0
        # paired over seeds: every variant trains the same fresh seeds (init and data)
        d_mean, d_se = summary(rows[n][0] - top_seeds)
        zp = d_mean / d_se if n != order[0] and d_se > 0 else 0.0
        lr, edge, tune_fit = best[n]
        metrics = " ".join(f"{summary(r['metric'])[0]:.5g}" if r["status"] == "ok" else r["status"]
                           for r in rows[n][1])
        lines.append(f"  {n:14s} lr {lr:<8.3g}{edge} fitness {m:7.3f} ± {se:.3f}  z {z:+6.1f} zp {zp:+6.1f}"
                     f"  tune {tune_fit:7.3f}  metrics [{metrics}]")
    return "\n".join(lines)


def main(argv=None, prog: str | None = None, description: str | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog, description=description or __doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", required=True, help="NAME[@SCALE][:k=v,...]")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--aggregate", choices=("mean", "geomean"), default="geomean")
    ap.add_argument("--uncapped", dest="cap", action="store_false",
                    help="rank by the uncapped ratio (the search caps each task at SCORE_CAP)")
    ap.add_argument("--only", nargs="*", default=[], help="families or variant names")
    ap.add_argument("--per-decade", type=int, default=3, help="lr grid points per decade")
    ap.add_argument("--lr-min", type=float, default=1e-4)
    ap.add_argument("--lr-max", type=float, default=1e-1)
    ap.add_argument("--program", action="append", default=[], metavar="FILE",
                    help="a program file (or run directory) to rank as well (repeatable)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu",
                    help="torch device for training (cuda: spawned workers share the GPU)")
    ap.add_argument("--out", default="runs/calibration/rank.jsonl")
    args = ap.parse_args(argv)
    t0 = time.time()
    tasks, best, rows = rank(args)
    print(report(args, tasks, best, rows) + f"\n  wall {time.time() - t0:.0f}s", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps({"args": vars(args), "best": best,
                            "fresh": {n: {"fitness": list(map(float, s)), "results": r}
                                      for n, (s, r) in rows.items()},
                            "date": time.strftime("%Y-%m-%d")}, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

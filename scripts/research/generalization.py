"""Generalisation benchmark: the discovered optimizer vs tuned AdamW on tasks the search never saw.

The default search suite is noisy_quadratic + teacher_student, so this trains on char_lm and
denoise_ae (scale 1) by default; digits_mlp is unseen too. Each optimizer is a program: a program file, a run
directory (its winner, as `optsearch export` takes it), or a reference name (`lion`, `signum`, ...); AdamW (the reference
program, the search's warm start) is always added as the baseline.

Tuning: each optimizer's peak learning rate is tuned on a grid of factors (default 0.1 to 100
in half-decade steps) on tuning seeds 0..T-1; the factor multiplies the program's whole
update (the compiled rule's output, weight decay term included). For programs of the form
`update = (direction + wd * w) * (lr * C)`, AdamW's and Lion's, that is exactly scaling the
lr constant C; it is also defined for programs that have no `lr = lr * C` statement (e.g. a
sign rule that ignores the schedule) and it never changes the state trajectory's inputs
other than through w. The best factor is then re-run on *fresh* seeds 1000..1000+S-1, so the
reported mean is not inflated by picking the luckiest grid point (winner's curse; as
scripts/research/calibrate.py does).

Training uses the compiled program, `primitives.codegen.compile_program(program,
batch_dims=1)`, through `task.run` exactly as the evaluator does (K seeds stacked in one
model). The exported torch optimizer (`optsearch export`) is tested equal to the compiled
program elsewhere (tests/test_export.py: every reference program and unusual programs match
their compiled rule), so these numbers hold for the exported class too.

    .venv/bin/python -m scripts.research.generalization runs/rediscovery/seed0 lion --workers 2
    .venv/bin/python -m scripts.research.generalization lion --scale 0 --seeds 2 --tune-seeds 2

Prints a markdown table (task, optimizer, chosen lr factor, metric mean ± s.e. on fresh
seeds, cost) and, for every optimizer against AdamW, the difference in units of the combined
standard error (sqrt(se_a^2 + se_b^2)) and the paired one (the same seeds: same init and
batches); positive = better than AdamW. Writes JSON lines to --out when given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from optsearch.cli.errors import UserError, exit_status
from optsearch.evaluator.noise import standard_error

DEFAULT_TASKS = ("char_lm", "denoise_ae")
DEFAULT_GRID = tuple(round(10 ** (k / 2), 4) for k in range(-2, 5))  # 0.1 .. 100
BASELINE = "adamw"
TEST_SEED_OFFSET = 1000


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m scripts.research.generalization", description=__doc__.splitlines()[0])
    p.add_argument("programs", nargs="+",
                   help="program file, run directory (its winner) or reference name")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--seeds", type=int, default=8, help="fresh seeds for the final numbers")
    p.add_argument("--tune-seeds", type=int, default=4, help="seeds for the lr grid")
    p.add_argument("--grid", type=float, nargs="+", default=list(DEFAULT_GRID),
                   help="lr factors (multiply the whole update)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", help="append one JSON line per (task, optimizer) to this file")
    args = p.parse_args(argv)
    if args.seeds < 2 or args.tune_seeds < 1:
        raise UserError("need --seeds >= 2 (a standard error) and --tune-seeds >= 1")
    return args


# ---------------------------------------------------------------- programs
def load_program(spec: str) -> tuple[str, str]:
    """(label, checked program text) from a file, a run directory (its winner, as `optsearch
    export` takes it) or a reference name."""
    from optsearch.cli.programs import read_program, read_run_winner
    from optsearch.primitives.printer import format_program
    from optsearch.primitives.program import ProgramError

    try:
        if os.path.isdir(spec):
            return os.path.basename(os.path.normpath(spec)), format_program(read_run_winner(spec)[0])
        label = os.path.splitext(os.path.basename(spec))[0] if os.path.exists(spec) else spec
        return label, format_program(read_program(spec))
    except ProgramError as exc:
        raise UserError(f"{spec}:{exc.line}: {exc.message}") from None


class ScaledRule:
    """The compiled rule with its update multiplied by `factor` (the lr factor)."""

    def __init__(self, rule, factor: float):
        self.rule, self.factor = rule, float(factor)
        self.n_slots = rule.n_slots

    def __call__(self, w, g, state, lr):
        update, new_state = self.rule(w, g, state, lr)
        return update * self.factor, new_state


# ---------------------------------------------------------------- jobs
def run_job(job: dict) -> dict:
    """One (task, program, factor, seeds) training run; top level for worker processes."""
    from optsearch.evaluator.train import compile_checked
    from optsearch.proxy_tasks import get_task

    task = get_task(job["task"], job["scale"])
    rule = ScaledRule(compile_checked(job["program"]), job["factor"])
    data = task.load_data()
    t0 = time.perf_counter()  # training only: data loading and compilation excluded
    try:
        res = task.run(rule, job["seeds"], data)
        status, metric, lower = res.status, res.metric, res.lower_is_better
        if status == "ok" and not all(math.isfinite(m) for m in metric):
            status = "diverged"
    except Exception as exc:  # noqa: BLE001 -- a program error is a failed run, not a crash
        status, metric, lower = f"error: {type(exc).__name__}", [math.nan] * len(job["seeds"]), \
            task.lower_is_better
    return dict(job, status=status, metric=[float(m) for m in metric], lower_is_better=lower,
                seconds=time.perf_counter() - t0)


def run_jobs(jobs: list[dict], workers: int) -> list[dict]:
    if workers <= 1:
        return [run_job(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(run_job, jobs))


def mean_se(values) -> tuple[float, float]:
    return float(np.mean(values)), standard_error(values)


def _score(result: dict) -> float:
    """Tuning criterion: mean metric over the tuning seeds, oriented so lower is better;
    failed runs last."""
    if result["status"] != "ok":
        return math.inf
    m = float(np.mean(result["metric"]))
    return m if result["lower_is_better"] else -m


def benchmark(args, programs: dict[str, str]) -> list[dict]:
    tune_seeds = list(range(args.tune_seeds))
    test_seeds = list(range(TEST_SEED_OFFSET, TEST_SEED_OFFSET + args.seeds))
    base = {"scale": args.scale}
    tune = [dict(base, task=t, label=name, program=text, factor=f, seeds=tune_seeds)
            for t in args.tasks for name, text in programs.items() for f in args.grid]
    t0 = time.perf_counter()
    tuned = run_jobs(tune, args.workers)
    print(f"tuning: {len(tune)} runs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    chosen = {}
    for t in args.tasks:
        for name in programs:
            rows = [r for r in tuned if r["task"] == t and r["label"] == name]
            best = min(rows, key=_score)
            chosen[t, name] = (best["factor"], rows)
    final = [dict(base, task=t, label=name, program=programs[name], factor=chosen[t, name][0],
                  seeds=test_seeds) for t in args.tasks for name in programs]
    t0 = time.perf_counter()
    results = run_jobs(final, args.workers)
    print(f"final: {len(final)} runs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    for r in results:
        factor, rows = chosen[r["task"], r["label"]]
        r["grid"] = {row["factor"]: (row["status"], mean_se(row["metric"])[0]) for row in rows}
        ok_factors = [row["factor"] for row in rows if row["status"] == "ok"]
        r["edge"] = bool(ok_factors) and factor in (min(args.grid), max(args.grid))
    return results


# ---------------------------------------------------------------- report
def peak_lrs(programs: dict[str, str]) -> dict:
    """Each program's own peak lr (recognised, or the probe's step size for a sign rule;
    None when unknown), for showing factor x lr."""
    from scripts.research.outcome import classify

    out = {}
    for name, text in programs.items():
        lr = classify(text).hyperparameters.get("lr")
        out[name] = float(lr) if isinstance(lr, (int, float)) else None
    return out


def compare(a: dict, b: dict) -> tuple[float, float, float]:
    """(difference, z combined, z paired) of a vs baseline b; positive = a is better."""
    sign = -1.0 if a["lower_is_better"] else 1.0
    ma, sa = mean_se(a["metric"])
    mb, sb = mean_se(b["metric"])
    diff = sign * (ma - mb)
    combined = math.hypot(sa, sb)
    z = diff / combined if combined > 0 else math.nan
    d = sign * (np.asarray(a["metric"]) - np.asarray(b["metric"]))
    _, sd = mean_se(d)
    zp = float(d.mean()) / sd if sd > 0 else math.nan
    return diff, z, zp


def report(results: list[dict], baseline_label: str) -> str:
    lines = [("| task | optimizer | lr factor | peak lr | metric (mean ± s.e.) | status | "
              "cost s (all seeds) | vs AdamW | z (combined s.e.) | z (paired) |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    by_task: dict[str, list[dict]] = {}
    for r in results:
        by_task.setdefault(r["task"], []).append(r)
    for task, rows in by_task.items():
        base = next(r for r in rows if r["label"] == baseline_label)
        for r in rows:
            m, se = mean_se(r["metric"])
            edge = " (grid edge)" if r["edge"] else ""
            if r is base:
                cmp = "baseline | | "
            else:
                diff, z, zp = compare(r, base)
                cmp = f"{diff:+.4f} | {z:+.2f} | {zp:+.2f}"
            peak = "-" if r.get("peak_lr") is None else f"{r['peak_lr']:.3g}"
            lines.append(f"| {task} | {r['label']} | {r['factor']:g}{edge} | {peak} | "
                         f"{m:.4f} ± {se:.4f} | {r['status']} | {r['seconds']:.1f} | {cmp} |")
    direction = {r["task"]: "lower" if r["lower_is_better"] else "higher" for r in results}
    notes = ", ".join(f"{t}: {d} is better" for t, d in direction.items())
    lines.append("")
    lines.append(f"metric direction -- {notes}; 'vs AdamW' and z are signed so that positive "
                 f"= better than tuned AdamW; lr factor multiplies the program's whole update.")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    programs: dict[str, str] = {}
    for spec in args.programs:
        label, text = load_program(spec)
        while label in programs:
            label += "'"
        programs[label] = text
    if BASELINE not in programs:
        programs[BASELINE] = load_program(BASELINE)[1]
    print(f"tasks {args.tasks} at scale {args.scale}; tuning seeds 0..{args.tune_seeds - 1}, "
          f"grid {args.grid}; final seeds {TEST_SEED_OFFSET}..{TEST_SEED_OFFSET + args.seeds - 1}"
          f"; optimizers: {', '.join(programs)}", flush=True)
    results = benchmark(args, programs)
    peak = peak_lrs(programs)
    for r in results:
        r["peak_lr"] = None if peak[r["label"]] is None else peak[r["label"]] * r["factor"]
    print(report(results, BASELINE))
    if args.out:
        with open(args.out, "a") as fh:
            for r in results:
                row = {k: v for k, v in r.items() if k != "grid"}
                row["grid"] = {repr(k): v for k, v in r["grid"].items()}
                fh.write(json.dumps(row) + "\n")
        print(f"appended {len(results)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))

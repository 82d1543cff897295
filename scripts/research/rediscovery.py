"""Rediscovery benchmark: how often does a search from the AdamW warm start end in
sign-momentum form, in Lion's form with beta1 < beta2, or in plain sign descent?

Runs one independent search per seed, one after the other (a search already uses every
worker), each in `OUT/seed<k>` with a budget of evaluations (so the outcome does not depend
on machine load; `--minutes` adds an optional wall cap per run), then analyses every run's
sqlite store: the outcome class (search.outcome) of the best program and of the top-3
distinct programs, when the first sign-momentum program (lion / lion_b1_ge_b2 / signum) and
the first sign program of any kind (sign_descent too) finished, counted in backend
evaluations finished by then and in wall seconds since the run was created, the best
program's recognised name and constants, how many distinct programs in each sign-momentum
class the backend trained (on the rung or in full; `sign_momentum_forms`, ~1 min per 10,000
trained programs), and the run counters of `search.stats.run_stats`
(`optsearch inspect RUN stats --json`): cache hit rate, invalid proposals / proposals,
dead-statement fraction of the final population.

    .venv/bin/python -m scripts.research.rediscovery --seeds 0 1 2 3 4 --budget 800 \\
        --backend ray --workers 2 --suite default --out runs/rediscovery
    .venv/bin/python -m scripts.research.rediscovery --from-runs runs/a runs/b   # analyse only
    .venv/bin/python -m scripts.research.rediscovery --from-runs runs/a --meta 10   # and each
        # run's best program against lr-tuned AdamW and Lion on the suite at 10x

An existing OUT/seed<k> run is resumed up to the budget (a finished one is only analysed).
Prints a markdown table and summary lines; writes OUT/summary.json (with --from-runs,
--out is only where summary.json goes, default: no file unless --out is given).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from optsearch.cli.errors import UserError, exit_status

TOP_K = 3
GOALS = {"sign_momentum": 0.8, "lion": 0.6}  # the goals: >= 4/5 and >= 3/5 seeds


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m scripts.research.rediscovery", description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--budget", type=int, default=800, help="backend evaluations per run")
    p.add_argument("--minutes", type=float, help="optional wall-time cap per run")
    p.add_argument("--backend", default="ray", choices=("ray", "serial"))
    p.add_argument("--workers", type=int, default=2,
                   help="evaluations in flight (0: one per core, as the search config)")
    p.add_argument("--address", help="Ray cluster address")
    p.add_argument("--suite", default="default")
    p.add_argument("--config", help="search TOML config (default: configs/default.toml values)")
    p.add_argument("--pool", choices=("default", "paper"),
                   help="functions mutation draws from ('paper': no per-tensor mean)")
    p.add_argument("--hurdles", action="store_true",
                   help="progressive hurdles on ([evaluation] hurdles = true)")
    p.add_argument("--out", help="directory of the runs and summary.json "
                                 "(default runs/rediscovery; with --from-runs: none)")
    p.add_argument("--from-runs", nargs="+", metavar="DIR",
                   help="analyse these run directories; no search")
    p.add_argument("--progress", action="store_true", help="show each search's progress bar")
    p.add_argument("--meta", type=int, metavar="SCALE",
                   help="also evaluate each run's best program, and AdamW and Lion with their "
                        "step size tuned as the warm start's, on the suite at SCALE (e.g. 10)")
    return p.parse_args(argv)


# ---------------------------------------------------------------- searching
def run_searches(args) -> list[str]:
    from optsearch.cli.cmd_search import execute
    from optsearch.cli.programs import read_program
    from optsearch.evaluator.backends import BackendUnavailable
    from optsearch.search.config import ConfigError, load
    from optsearch.search.driver import resume_run, start_run
    from optsearch.search.store import DB_NAME

    out = args.out or os.path.join("runs", "rediscovery")
    run_dirs = []
    for seed in args.seeds:
        try:
            config = load(args.config).with_overrides(
                budget=args.budget, seed=seed, workers=args.workers, address=args.address,
                backend=args.backend, suite=args.suite, pool=args.pool,
                hurdles=True if args.hurdles else None)
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        run_dir = os.path.join(out, f"seed{seed}")
        try:
            if os.path.exists(os.path.join(run_dir, DB_NAME)):
                print(f"seed {seed}: {run_dir} exists; resuming it (with its own config) up "
                      f"to {args.budget} evaluations", flush=True)
                driver = resume_run(run_dir, budget=args.budget)
            else:
                driver = start_run(run_dir, config, read_program(config.search.init))
        except BackendUnavailable as exc:
            raise UserError(str(exc)) from None
        deadline = None if args.minutes is None else time.monotonic() + 60.0 * args.minutes
        t0 = time.monotonic()
        print(f"seed {seed}: searching in {run_dir} (budget {args.budget}"
              f"{'' if args.minutes is None else f', cap {args.minutes:g} min'}, "
              f"backend {args.backend}, {args.workers} workers, suite {args.suite})", flush=True)
        if execute(driver, run_dir, quiet=not args.progress, deadline=deadline) != 0:
            raise KeyboardInterrupt
        print(f"seed {seed}: {time.monotonic() - t0:.0f} s", flush=True)
        run_dirs.append(run_dir)
    return run_dirs


# ---------------------------------------------------------------- analysis
def analyse_run(run_dir: str) -> dict:
    """One table row (as a dict) from a run directory, read-only."""
    from optsearch.search.config import load
    from optsearch.search.stats import run_stats
    from optsearch.search.store import RunStore
    from scripts.research.outcome import classify

    try:
        store = RunStore.open(run_dir, readonly=True)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    try:
        config = load(store.config_path)
        stats = run_stats(store)
        meta = store.load_state("meta") or {}
        start = meta.get("created_at")
        rows = store.ok_results()
        if start is None:
            start = min((r["proposed_at"] for r in rows), default=None)
        eval_times = store.evaluation_times()
        top = [r for r in store.ranked() if r["status"] == "ok"][:TOP_K]
        best = _program_entry(top[0], classify) if top else None
        tops = [_program_entry(r, classify, brief=True) for r in top]
        first_sm, first_sign = _first_sign(rows, eval_times, start)
        forms = sign_momentum_forms(store.trained_programs())
        end = max(eval_times, default=start)
    finally:
        store.close()
    proposed = stats["proposed"]
    return {
        "run_dir": run_dir, "seed": config.search.seed, "suite": config.evaluation.suite,
        "budget": stats["budget"], "evaluated": stats["evaluated"],
        "wall_s": None if start is None or end is None else end - start,
        "best": best, "top": tops,
        "first_sign_momentum": first_sm, "first_sign": first_sign, "forms": forms,
        "cache_hit_rate": stats["cache_hit_rate"],
        "invalid_fraction": stats["invalid"] / proposed if proposed else 0.0,
        "dead_fraction": stats["dead_fraction"],
        "stats": stats,
    }


def _program_entry(row, classify, brief=False) -> dict:
    out = classify(row["program"])
    entry = {"id": row["id"], "fitness": row["aggregate"], "class": out.cls, "name": out.name}
    if not brief:
        entry.update(hyperparameters=out.hyperparameters, source=out.source, note=out.note,
                     program=row["program"], simplified=out.simplified)
    return entry


def _first_sign(rows, eval_times, start):
    """The first finished ok candidates (by finish time) in a sign-momentum class and in any
    sign class. A cheap probe pre-filters (search.outcome.sign_based): a program whose raw
    update is not sign-based is in no sign class."""
    from bisect import bisect_right

    from scripts.research.outcome import SIGN_ANY, SIGN_MOMENTUM, classify, sign_based

    first = {"sign_momentum": None, "sign": None}
    for row in sorted(rows, key=lambda r: (r["finished_at"], r["id"])):
        if not sign_based(row["program"]):
            continue
        cls = classify(row["program"]).cls
        hit = {"id": row["id"], "class": cls, "fitness": row["aggregate"],
               "evaluations": bisect_right(eval_times, row["finished_at"]),
               "wall_s": None if start is None else row["finished_at"] - start}
        if cls in SIGN_ANY and first["sign"] is None:
            first["sign"] = hit
        if cls in SIGN_MOMENTUM and first["sign_momentum"] is None:
            first["sign_momentum"] = hit
        if first["sign"] is not None and first["sign_momentum"] is not None:
            break
    return first["sign_momentum"], first["sign"]


def sign_momentum_forms(trained) -> dict:
    """class -> [distinct programs trained at all, distinct programs trained in full and ok],
    for the sign-momentum classes; programs are distinct by structural hash. A program
    screened at the rung and stopped there counts in the first number only."""
    from scripts.research.outcome import SIGN_MOMENTUM, classify, sign_based

    screened: dict[str, set] = {c: set() for c in sorted(SIGN_MOMENTUM)}
    full: dict[str, set] = {c: set() for c in sorted(SIGN_MOMENTUM)}
    for row in trained:
        if not sign_based(row["program"]):
            continue
        cls = classify(row["program"]).cls
        if cls in SIGN_MOMENTUM:
            screened[cls].add(row["structural_hash"])
            if row["source"] == "evaluated" and row["status"] == "ok":
                full[cls].add(row["structural_hash"])
    return {c: [len(screened[c]), len(full[c])] for c in screened}


# ---------------------------------------------------------------- meta-validation
def meta_validate(rows: list[dict], args) -> dict:
    """name -> (mean, s.e.) on suite@SCALE of every run's best program (by seed) and of
    AdamW and Lion lr-tuned as the main job tunes them (search.pipeline), in one batch."""
    from optsearch.search import pipeline
    from optsearch.search.config import load
    from optsearch.search.store import RunStore

    store = RunStore.open(rows[0]["run_dir"], readonly=True)
    try:
        config = load(store.config_path).with_overrides(
            backend=args.backend, workers=args.workers, address=args.address)
    finally:
        store.close()
    tuned = pipeline.lr_tuned_references(config)
    programs = {f"seed {r['seed']}": r["best"]["program"] for r in rows if r["best"]}
    programs.update({f"{name} (lr x{factor:g}, tuned)": text
                     for name, (factor, text) in (("AdamW", tuned["adamw"]),
                                                  ("Lion", tuned["lion"]))})
    suite, table, statuses = pipeline.compare(config, programs, args.meta)
    print(f"\nmeta-validation on {suite} (AdamW = 1.0; mean ± s.e. over seeds):")
    for name, (mean, err) in table.items():
        status = "" if statuses[name] == "ok" else f"  ({statuses[name]})"
        print(f"  {name:24s} {mean:.3f} ± {err:.3f}{status}")
    return {"suite": suite, "table": table, "statuses": statuses}


# ---------------------------------------------------------------- report
def _hp(hp: dict) -> str:
    keep = ("beta1", "beta2", "beta", "momentum", "alpha", "lr", "weight_decay", "schedule")
    parts = []
    for k in keep:
        if k in hp and hp[k] is not None:
            v = hp[k]
            parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)


def _when(hit) -> str:
    if hit is None:
        return "never"
    wall = "" if hit["wall_s"] is None else f" / {hit['wall_s']:.0f}s"
    return f"{hit['evaluations']} ev{wall} ({hit['class']})"


def _forms(forms, cls) -> str:
    return "-" if not forms else f"{forms[cls][0]} / {forms[cls][1]}"


def table(rows: list[dict]) -> str:
    head = ("| seed | best class | top-3 classes | best fitness | recognised (constants) | "
            "first sign-momentum | first sign | Lion-form programs (screened / full) | "
            "screened / in full | last full evaluation (s) | cache hits | invalid | dead |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        b = r["best"]
        if b is None:
            best_cls, rec, fit = "none", "-", "-"
        else:
            best_cls, fit = b["class"], f"{b['fitness']:.4f}"
            rec = f"{b['name']} ({_hp(b['hyperparameters'])})" if b["hyperparameters"] \
                else b["name"]
        tops = ", ".join(t["class"] for t in r["top"]) or "-"
        wall = "-" if r["wall_s"] is None else f"{r['wall_s']:.0f}"
        lines.append(f"| {r['seed']} | {best_cls} | {tops} | {fit} | {rec} | "
                     f"{_when(r['first_sign_momentum'])} | {_when(r['first_sign'])} | "
                     f"{_forms(r.get('forms'), 'lion')} | "
                     f"{r['stats'].get('screened', r['evaluated'])} / {r['evaluated']} | {wall} | "
                     f"{r['cache_hit_rate']:.1%} | "
                     f"{r['invalid_fraction']:.1%} | {r['dead_fraction']:.1%} |")
    return "\n".join(lines)


def summarize(rows: list[dict]) -> dict:
    from scripts.research.outcome import SIGN_MOMENTUM

    n = len(rows)
    best = [r["best"]["class"] if r["best"] else "none" for r in rows]
    counts = {
        "sign_momentum": sum(c in SIGN_MOMENTUM for c in best),
        "lion": sum(c == "lion" for c in best),
        "sign_descent": sum(c == "sign_descent" for c in best),
        "reached_sign_momentum": sum(r["first_sign_momentum"] is not None for r in rows),
        "reached_sign": sum(r["first_sign"] is not None for r in rows),
    }
    goals = {k: math.ceil(frac * n - 1e-9) for k, frac in GOALS.items()}
    return {"n": n, "counts": counts, "goals": goals, "best_classes": best}


def summary_lines(s: dict) -> list[str]:
    n, c, g = s["n"], s["counts"], s["goals"]

    def mark(k):
        return "met" if c[k] >= g[k] else "not met"
    return [
        (f"{c['sign_momentum']}/{n} seeds ended in sign-momentum form "
         f"(lion, lion_b1_ge_b2 or signum; goal >= {g['sign_momentum']}/{n}: "
         f"{mark('sign_momentum')})"),
        (f"{c['lion']}/{n} seeds ended in Lion form with beta1 < beta2 "
         f"(goal >= {g['lion']}/{n}: {mark('lion')})"),
        f"{c['sign_descent']}/{n} seeds ended in sign descent (sign of the current gradient)",
        (f"{c['reached_sign_momentum']}/{n} seeds found a sign-momentum program at some "
         f"point; {c['reached_sign']}/{n} found a sign program of any kind"),
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_runs:
        run_dirs = args.from_runs
    else:
        run_dirs = run_searches(args)
        args.out = args.out or os.path.join("runs", "rediscovery")
    t0 = time.perf_counter()
    rows = [analyse_run(d) for d in run_dirs]
    s = summarize(rows)
    print()
    print(table(rows))
    print()
    for line in summary_lines(s):
        print(line)
    print(f"(analysis {time.perf_counter() - t0:.1f} s)")
    if args.meta:
        s["meta"] = meta_validate(rows, args)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "summary.json")
        with open(path, "w") as fh:
            json.dump({"runs": rows, "summary": s, "argv": sys.argv[1:]}, fh, indent=2,
                      default=str)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))

"""Recovery benchmark: does a target-mode search rediscover the optimizer it imitates?

For each target and search seed, a target-mode search (`optsearch search --target T`) runs
from the AdamW warm start with a budget of evaluations, in one of eight variants:
  default    -- as `optsearch search --target`: the configured mutation operators (insert,
                delete, modify, replace);
  refine     -- the same with constant fitting of the best program during the search, every
                REFINE_EVERY evaluations (`search.refine_every`; its evaluations count in
                the budget);
  paper_ops  -- the Lion paper's three operators only (mutation.replace_weight = 0);
  random     -- pure random search: every evaluation a fresh random program (6 inserts; no
                restarts, which would refill the population with copies of its best);
  islands    -- ISLANDS independent populations (`search.islands`), asked in turn: a multi-start
                of the default, so one population stuck on a near-equivalent does not hold
                the whole budget;
  restart_initial -- the default, but a plateaued population starts again from the warm
                start (`search.restart_from = "initial"`) instead of from its own best;
  splice     -- the default, but an insert into a new variable is spliced into one later
                read (`mutation.splice = true`; off, such an insert never proposes a child);
  long_stream -- the default on a LONG_STREAM_STEPS-step stream (`evaluation.target_steps`;
                the criterion still judges on the default stream): an undecayed sum and
                Lion's EMA (beta2 0.99, memory ~100 steps) differ little over 100 steps.
A run has recovered its target when the best program so far
  - shipped targets: simplified as `optsearch simplify RUN_DIR` does for a target-mode run
    (ablations, a final constant fit of at most FINAL_FIT_EVALUATIONS evaluations, and
    rounding, all judged by the imitation fitness on the run's own stream) is
    recognised as the target's template, with each (1 - beta) and the lr within 2% of the
    target's (the target's own recognition gives those);
  - other targets (program files, torch classes): imitates the target on a held-out run
    (other seeds, a wider student) with relative update error <= 10%
    (evaluator.imitation.relative_update_error).
The best program is checked whenever it changes, at most once per `--check-every`
evaluations and at the end; a run stops once it has recovered. Evaluations and minutes to
recovery are those of the recognised program's evaluation (minutes exclude the checks); the
evaluations count what the budget counts: screened programs plus constant-fitting calls
during the search; the check's own final fit (at most FINAL_FIT_EVALUATIONS imitation
evaluations, seconds) is not counted, as simplification after a search is not.

    .venv/bin/python -m scripts.research.recovery --targets lion --seeds 0,1,2,3,4 \\
        --variants default --budget 20000 --results runs/recovery/results.jsonl
    .venv/bin/python -m scripts.research.recovery --summary runs/recovery/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import time

from optsearch.evaluator.imitation import HELD_OUT_STREAM, record_stream, relative_update_error
from optsearch.evaluator.measure import imitation_measure
from optsearch.evaluator.targets import resolve_target
from optsearch.primitives.parser import parse
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference
from optsearch.search.config import TARGET_INIT_LR_FACTORS, Config
from optsearch.search.constants import FINAL_FIT_EVALUATIONS
from optsearch.search.distill.recognize import recognize
from optsearch.search.distill.simplify import simplify
from optsearch.search.driver import start_run

SHIPPED = ("lion", "signum", "adamw", "adam", "rmsprop", "adagrad", "adabelief", "sgdm")
OWN = ("scripts/research/targets/nesterov.py", "scripts/research/targets/adamax.py")
BLACK_BOX = ("torch.optim.NAdam",)
BETA_KEYS = ("beta1", "beta2", "beta", "alpha", "momentum")
TOLERANCE = 0.02  # relative, on each (1 - beta) and on the lr
CRITERION_VERSION = "simplify+clip+gd+fit2+post-ablation-exact+zero-slot+saturated-gain+higher-order"  # simplify (clip as sign, previous-gradient Lion), fit
HELD_OUT_TOLERANCE = 0.10
EQUIVALENT_TOLERANCE = 0.02  # the diagnostic column: simplified winner vs target, held out
VARIANTS = ("default", "refine", "paper_ops", "random", "islands", "restart_initial",
            "long_stream", "splice")
REFINE_EVERY = 500
ISLANDS = 4
LONG_STREAM_STEPS = 300


class Criterion:
    """Has a program recovered the target? (See the module docstring.)"""

    def __init__(self, spec: str):
        self.spec = spec
        self.expected = recognize(load_reference(spec)) if spec in REFERENCE_NAMES else None
        target = resolve_target(spec)
        self.held_out = record_stream(target, HELD_OUT_STREAM)
        self.measure = imitation_measure(record_stream(target), f"imitation of {spec}")

    def __call__(self, program) -> dict:
        held_out = relative_update_error(program, self.held_out)
        out = {"held_out_error": held_out if math.isfinite(held_out) else None}
        if self.expected is None:
            return out | {"recovered": held_out <= HELD_OUT_TOLERANCE}
        simplified = simplify(program, self.measure, self.measure,
                              fit_evaluations=FINAL_FIT_EVALUATIONS)
        found = simplified.recognition
        # Not the criterion, a diagnostic: a winner the recogniser does not name may still
        # be the target in another form (e.g. Lion as an EMA of 10 g_t - 9 g_{t-1}).
        equivalent = relative_update_error(simplified.program, self.held_out)
        out |= {"recognized": found.name, "hyperparameters": found.hyperparameters,
                "simplified_held_out_error": equivalent if math.isfinite(equivalent) else None}
        return out | {"recovered": self._matches(found)}

    def _matches(self, found) -> bool:
        want = self.expected
        if found.name != want.name:
            return False
        for key, value in want.hyperparameters.items():
            got = found.hyperparameters.get(key)
            if key in BETA_KEYS:
                value, got = 1 - value, None if got is None else 1 - got
            elif key != "lr":
                continue  # weight decay is not part of the criterion
            if got is None or abs(got - value) > TOLERANCE * abs(value):
                return False
        return True


def configure(spec: str, variant: str, seed: int, budget: int) -> tuple[Config, bool]:
    """(config, warm start?) for one run."""
    config = Config()
    config.search.budget, config.search.seed = budget, seed
    config.evaluation.target = os.path.abspath(spec) if os.path.isfile(spec) else spec
    config.search.init_lr_factors = TARGET_INIT_LR_FACTORS  # as `optsearch search --target`
    config.search.refine_every = REFINE_EVERY if variant == "refine" else 0
    if variant == "paper_ops":
        config.mutation.replace_weight = 0.0
    if variant == "islands":
        config.search.islands = ISLANDS
    if variant == "splice":
        config.mutation.splice = True
    if variant == "restart_initial":
        config.search.restart_from = "initial"
    if variant == "long_stream":
        config.evaluation.target_steps = LONG_STREAM_STEPS
    if variant == "random":  # every proposal a random program: the initial population never
        # fills (duplicates and cache hits do not count in the budget, so P = budget + 1 ran out
        # of initial programs and went on with mutations) and never restarts (a restart refills
        # it with its best: hill climbing)
        config.search.population_size = budget * config.search.max_proposals_per_eval
        config.search.restart_plateau = 0
    return config.validate(), variant != "random"


def run_one(spec, variant, seed, budget, out_dir, check_every, criterion,
            max_minutes=None) -> dict:
    config, warm = configure(spec, variant, seed, budget)
    name = os.path.splitext(os.path.basename(spec))[0]
    run_dir = os.path.join(out_dir, f"{name}-{variant}-s{seed}")
    driver = start_run(run_dir, config, load_reference("adamw") if warm else None)
    t0, checks = time.perf_counter(), {"seconds": 0.0, "last": -check_every, "best": None}
    found: dict = {}
    seen: dict = {}  # best candidate id -> (evaluations, search seconds) when it was evaluated

    def check(d) -> None:
        c0 = time.perf_counter()
        verdict = criterion(d.best.program)
        checks["seconds"] += time.perf_counter() - c0
        checks["last"], checks["best"] = d.spent, d.best.id
        if verdict["recovered"] and not found:
            evaluations, seconds = seen[d.best.id]
            found.update(verdict, evaluations=evaluations, minutes=seconds / 60,
                         candidate=d.best.id)
            d.budget = d.spent + len(d.pending)  # stop: recovered

    def on_step(d) -> None:
        search_s = time.perf_counter() - t0 - checks["seconds"]
        if max_minutes is not None and search_s > 60 * max_minutes:
            d.budget = min(d.budget, d.spent + len(d.pending))  # out of time
        if d.best is None:
            return
        if d.best.id not in seen:
            seen[d.best.id] = (d.spent,
                               time.perf_counter() - t0 - checks["seconds"])
        if d.best.id != checks["best"] and d.spent - checks["last"] >= check_every:
            check(d)

    driver.on_step = on_step
    try:
        driver.run()
        if driver.best is not None and driver.best.id != checks["best"]:
            check(driver)
        final = criterion(driver.best.program) if driver.best is not None else {}
    finally:
        driver.close()
    search_s = time.perf_counter() - t0 - checks["seconds"]
    return {"target": spec, "variant": variant, "seed": seed, "budget": budget,
            "criterion": CRITERION_VERSION, "check_every": check_every,
            "max_minutes": max_minutes, "load_1min": os.getloadavg()[0],
            "evaluated": driver.spent, "refine_evaluations": driver.counters["refine_evaluations"],
            "search_minutes": search_s / 60,
            "check_minutes": checks["seconds"] / 60, "recovered": bool(found),
            "evaluations_to_recovery": found.get("evaluations"),
            "minutes_to_recovery": found.get("minutes"),
            "best_fitness": driver.best.fitness if driver.best else None,
            "final": final, "run_dir": run_dir}


def recheck(path: str) -> None:
    with open(path) as fh:
        rows = [json.loads(line) for line in fh]
    criteria: dict = {}
    for r in rows:
        if r["target"] not in criteria:
            criteria[r["target"]] = Criterion(r["target"])
        with open(os.path.join(r["run_dir"], "best.py")) as fh:
            r["final"] = criteria[r["target"]](parse(fh.read()))
        r["final_criterion"] = CRITERION_VERSION
    with open(path, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


def replay(path: str) -> None:
    """For rows whose final winner is recovered (after --recheck: the current criterion), when
    a run's best-so-far sequence first met the current criterion, by bisection: the program
    found is recovered, and no earlier best is, if a recovered best stays recovered -- else it
    is an upper bound. The in-run checks may have used an older criterion, so every recovered
    row is replayed. Evaluations count full evaluations up to it (runs without in-search fits
    only); minutes run from the first proposal to its result and include the in-run checks."""
    with open(path) as fh:
        rows = [json.loads(line) for line in fh]
    for r in rows:
        if not r["final"].get("recovered") or r.get("refine_evaluations"):
            continue
        bests = _best_so_far(os.path.join(r["run_dir"], "run.sqlite"))
        criterion = Criterion(r["target"])
        lo, hi = 0, len(bests) - 1  # bests[hi] is the final winner: recovered
        while lo < hi:
            mid = (lo + hi) // 2
            if criterion(parse(bests[mid][2]))["recovered"]:
                hi = mid
            else:
                lo = mid + 1
        r["evaluations_to_recovery_replayed"], r["minutes_to_recovery_replayed"] = \
            bests[lo][0], bests[lo][1]
    with open(path, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


def _best_so_far(db: str) -> list:
    """(full evaluations so far, minutes since the first proposal, program) at every new best."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT source, aggregate, program, proposed_at, finished_at "
                            "FROM candidates ORDER BY id").fetchall()
    t0, evaluated, best, out = rows[0][3], 0, -math.inf, []
    for source, aggregate, program, _, finished in rows:
        evaluated += source == "evaluated"
        if aggregate is not None and aggregate > best:
            best = aggregate
            out.append((evaluated, (finished - t0) / 60, program))
    return out


def summarize(path: str) -> None:
    rows: dict = {}
    with open(path) as fh:
        for line in fh:
            r = json.loads(line)
            rows.setdefault((r["target"], r["variant"]), []).append(r)
    print("| target | variant | recovered | evaluations to recovery (mean ± s.e.) | "
          "minutes to recovery | evaluated per run | of which by in-run checks | "
          "final best (recognised) | "
          f"simplified winner within {EQUIVALENT_TOLERANCE:.0%} on the held-out run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (target, variant), runs in sorted(rows.items()):
        hit = [r for r in runs if r["recovered"] or r["final"].get("recovered")]
        ev = _mean_se([_when(r, "evaluations") for r in hit])
        mins = _mean_se([_when(r, "minutes") for r in hit])
        names = sorted({str(r["final"].get("recognized", "-")) for r in runs})
        close = [r["final"].get("simplified_held_out_error") for r in runs]
        close = "-" if all(e is None for e in close) else \
            f"{sum(e is not None and e <= EQUIVALENT_TOLERANCE for e in close)}/{len(runs)}"
        in_run = sum(bool(r["recovered"]) for r in runs)
        print(f"| {target} | {variant} | {len(hit)}/{len(runs)} | {ev} | {mins} | "
              f"{_mean_se([r['evaluated'] for r in runs])} | {in_run}/{len(runs)} | "
              f"{', '.join(names)} | {close} |")


def _when(row: dict, what: str):
    """Evaluations or minutes to recovery: the replay's (current criterion), else the in-run
    check's."""
    value = row.get(f"{what}_to_recovery_replayed")
    return row.get(f"{what}_to_recovery") if value is None else value


def _mean_se(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4g}"
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return f"{mean:.4g} ± {math.sqrt(var / len(values)):.3g}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default=",".join(SHIPPED + OWN + BLACK_BOX))
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--variants", default="default")
    p.add_argument("--budget", type=int, default=20_000)
    # a check simplifies and fits the constants (up to ~5 s): not after every new best
    p.add_argument("--check-every", type=int, default=500)
    p.add_argument("--max-minutes", type=float, default=None,
                   help="also stop a run after this many minutes of search (a shared machine)")
    p.add_argument("--out", default="runs/recovery")
    p.add_argument("--results", default=None, help="JSON lines file (default OUT/results.jsonl)")
    p.add_argument("--summary", metavar="RESULTS", help="print the table of a results file")
    p.add_argument("--replay", metavar="RESULTS",
                   help="after --recheck: when did the runs recovered only at the end recover?")
    p.add_argument("--recheck", metavar="RESULTS",
                   help="re-judge every row's final best program (best.py) with the current "
                        "criterion; rewrites each row's `final`, never its in-run verdict")
    args = p.parse_args()
    if args.recheck or args.replay:
        recheck(args.recheck) if args.recheck else replay(args.replay)
        return
    if args.summary:
        summarize(args.summary)
        return
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    results = args.results or os.path.join(args.out, "results.jsonl")
    os.makedirs(args.out, exist_ok=True)
    for spec in args.targets.split(","):
        criterion = Criterion(spec)
        for variant in args.variants.split(","):
            for seed in map(int, args.seeds.split(",")):
                row = run_one(spec, variant, seed, args.budget, args.out, args.check_every,
                              criterion, args.max_minutes)
                with open(results, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(json.dumps({k: row[k] for k in ("target", "variant", "seed", "evaluated",
                                                      "recovered", "evaluations_to_recovery",
                                                      "minutes_to_recovery")}), flush=True)


if __name__ == "__main__":
    main()

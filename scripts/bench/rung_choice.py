"""Which rung? The cost of being wrong and the screening gain of several rungs, on one real
population.

    OMP_NUM_THREADS=1 .venv/bin/python -m scripts.bench.rung_choice RUN_DIR \
        [--fractions 0.125,0.25,0.5] [--tail-fractions 0.0625] [--tail-history 1,4]
        [--quantiles 0.25,0.5] [--cascade-quantiles 0,0.1] [--repeat] [--reuse REPORT]
        [--children 200] [--seed 1] [--out FILE]

RUN_DIR is a finished search run (hurdles on or off; it is copied, never changed). From its first
island's population, `--children` new children are drawn as the search draws them
(tournament + mutation, duplicates of each other or of anything the run has seen skipped:
scripts.bench.hurdles.draw_children). Every child is trained in full once, and every child
and every member on each rung (the suite at `fraction` of its steps, all seeds; with
`--tail-fractions`, also the tail rung: the last `fraction` of the steps from AdamW's
checkpoint, evaluator.rungs), in this one process, one program at a time, so the seconds are
comparable. `--reuse` takes the full trainings, repeat and rungs of an earlier report on the
same run and draw instead of measuring them again, so new rungs are judged on the same labels.
Then, for each rung and hurdle quantile (the driver's rule: the quantile of the members' rung
scores):
  * cost of being wrong: children that reach the members' top quartile in full but are
    stopped at the hurdle, out of the top-quartile children;
  * pass rate: children that clear the hurdle;
  * screening gain: seconds per child without hurdles (its full training) over seconds per
    child with them (its rung, plus its full training if it passes), from the measured
    seconds of these very children -- the programs screened per minute, hurdles on / off,
    that the search would get from this population, without the driver's own overhead;
  * Spearman rank correlation of rung and full scores over the children that finish both.
With `--cascade-quantiles`, the same for two rungs in a row (every pair of fractions, the
cheaper first with each of these quantiles), from the same measured runs. With `--repeat`,
every child and member is trained in full again on fresh seeds: how many top-quartile
children a second full training places below the top quartile is the floor of the cost of
being wrong (no screen can agree with the first training better than a second one does).
Writes a JSON report with every child's program, scores and seconds (`--out`).
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

from optsearch.evaluator.baseline import baseline_metrics
from optsearch.evaluator.evaluate import DEFAULT_TIME_LIMIT_S, evaluate
from optsearch.evaluator.rungs import rung_suite, rung_time_limit, tail_suite
from optsearch.evaluator.serial_backend import SerialBackend
from optsearch.evaluator.suites import resolve_suite
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


def stage_hurdle(member_fitness, member_rungs, quantile: float) -> float | None:
    """The driver's hurdle: the quantile of the rung scores of members with a fitness."""
    scores = [r[1] for f, r in zip(member_fitness, member_rungs)
              if r[0] == "ok" and math.isfinite(f)]
    return float(np.quantile(scores, quantile, method="lower")) if scores else None


def top_quartile(member_fitness) -> float:
    """The members' top-quartile fitness: what a child must reach in full to matter."""
    return float(np.quantile([f for f in member_fitness if math.isfinite(f)], 0.75))


def judge(member_fitness, full, stages) -> dict:
    """The driver's hurdles on these rung scores, and what they cost and save.

    stages: [(member_rungs, child_rungs, quantile), ...], cheapest first; a child goes on to
    the next stage (and after the last, to its full training) only if it clears each hurdle.
    One stage is the driver's single rung; two are a cascade (AutoML-Zero's several hurdles).
    """
    quartile = top_quartile(member_fitness)
    alive, seconds_on, hurdles = [True] * len(full), 0.0, []
    for member_rungs, rungs, quantile in stages:
        hurdles.append(stage_hurdle(member_fitness, member_rungs, quantile))
        seconds_on += sum(r[2] for r, a in zip(rungs, alive) if a)
        alive = [a and clears(r[0], r[1], hurdles[-1]) for r, a in zip(rungs, alive)]
    seconds_on += sum(f[2] for f, a in zip(full, alive) if a)
    top = [i for i, f in enumerate(full) if f[0] == "ok" and f[1] >= quartile]
    stopped = [i for i in top if not alive[i]]
    return {"hurdles": hurdles, "top_quartile_fitness": quartile,
            "pass_rate": sum(alive) / len(alive),
            "top_quartile_children": len(top), "top_quartile_stopped": len(stopped),
            "of_top_quartile": len(stopped) / max(len(top), 1),
            "of_children": len(stopped) / len(alive),
            "screening_gain": sum(f[2] for f in full) / seconds_on}


def single_rungs(member_fitness, full, rungs_by_label, quantiles) -> dict:
    """One rung, each rung and hurdle quantile: the driver as it is."""
    out = {}
    for label, (member_rungs, rungs) in rungs_by_label.items():
        both = [i for i in range(len(full)) if full[i][0] == rungs[i][0] == "ok"]
        entry = {"spearman_rung_full": spearman([rungs[i][1] for i in both],
                                                [full[i][1] for i in both]),
                 "rung_failed_full_ok": sum(r[0] != "ok" and f[0] == "ok"
                                            for r, f in zip(rungs, full)),
                 "by_quantile": {str(q): judge(member_fitness, full,
                                               [(member_rungs, rungs, q)])
                                 for q in quantiles},
                 "member_rungs": member_rungs, "rungs": rungs}
        out[label] = entry
        for q, j in entry["by_quantile"].items():
            print(f"rung {label}, quantile {q}: {_summary(j)}, "
                  f"Spearman {_fmt(entry['spearman_rung_full'])}", flush=True)
    return out


def cascades(member_fitness, full, rungs_by_label, first_quantiles, quantiles) -> dict:
    """Two rungs in a row (every pair of rungs, the one that cost the children fewer seconds
    first): a lenient hurdle on the cheap rung, then the second rung's hurdle, computed from
    the same measured runs."""
    def cost(label):
        return sum(r[2] for r in rungs_by_label[label][1])
    out, labels = {}, sorted(rungs_by_label, key=cost)
    for i, fa in enumerate(labels):
        for fb in labels[i + 1:]:
            for qa in first_quantiles:
                for qb in quantiles:
                    stages = [(*rungs_by_label[fa], qa), (*rungs_by_label[fb], qb)]
                    key = f"{fa}@{qa:g}+{fb}@{qb:g}"
                    out[key] = judge(member_fitness, full, stages)
                    print(f"cascade {key}: {_summary(out[key])}", flush=True)
    return out


def repeat_check(member_fitness, full, member_repeat, repeat) -> dict:
    """The full evaluation's own cost of being wrong: children in the members' top quartile
    on the search's seeds that a second full training on fresh seeds places below the
    members' top quartile on those seeds (each quartile from the members' own scores on the
    same seeds). No screen judged against the first training can be expected to agree with
    it better than a second training does."""
    first_q = top_quartile(member_fitness)
    second_q = float(np.quantile([r[1] for r in member_repeat if r[0] == "ok"], 0.75))
    top = [i for i, f in enumerate(full) if f[0] == "ok" and f[1] >= first_q]
    lost = [i for i in top if not (repeat[i][0] == "ok" and repeat[i][1] >= second_q)]
    both = [i for i in range(len(full)) if full[i][0] == repeat[i][0] == "ok"]
    return {"top_quartile_first": first_q, "top_quartile_second": second_q,
            "top_quartile_children": len(top), "not_top_on_fresh_seeds": len(lost),
            "of_top_quartile": len(lost) / max(len(top), 1),
            "spearman_first_second": spearman([full[i][1] for i in both],
                                              [repeat[i][1] for i in both]),
            "member_repeat": member_repeat, "repeat": repeat}


def _summary(j: dict) -> str:
    return (f"stopped {j['top_quartile_stopped']} of {j['top_quartile_children']} "
            f"top-quartile children, pass rate {j['pass_rate']:.1%}, "
            f"screening gain {j['screening_gain']:.2f}x")


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def rung_label(kind: str, fraction: float, history: float = 1.0) -> str:
    """A rung's key in the report: the fraction alone for the compressed rung (as reports
    always had), `tail<fraction>` for the tail rung (`h<history>` where not 1)."""
    if kind == "compressed":
        return f"{fraction:g}"
    return f"{kind}{fraction:g}" + (f"h{history:g}" if history != 1.0 else "")


def reused(path: str | None, n_members: int, n_children: int) -> dict:
    """A previous report's measured runs (full, repeat, each rung) for the same population,
    so that a new rung is judged on the very same labels; {} without one."""
    if not path:
        return {}
    with open(path) as fh:
        old = json.load(fh)
    if (old["members"], old["children"]) != (n_members, n_children):
        raise SystemExit(f"error: {path}: {old['members']} members and {old['children']} "
                         f"children, not {n_members} and {n_children}: another population")
    return old


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--fractions", default="0.125,0.25,0.5",
                    help="compressed rungs: every task at this fraction of its steps")
    ap.add_argument("--tail-fractions", default="",
                    help="tail rungs: every task's last fraction of steps from AdamW's "
                         "checkpoint (evaluator.rungs); empty: none")
    ap.add_argument("--tail-history", default="1",
                    help="tail rungs' state warm-up, in reference steps per tail step "
                         "(a list: one rung per value)")
    ap.add_argument("--quantiles", default="0.25,0.5")
    ap.add_argument("--cascade-quantiles", default="",
                    help="hurdle quantiles of the cheaper rung in two-rung cascades "
                         "(e.g. 0,0.1,0.25); empty: no cascades")
    ap.add_argument("--repeat", action="store_true",
                    help="also train every child and member in full on fresh seeds")
    ap.add_argument("--reuse", help="a previous report on the same run and draw: its full "
                                    "trainings, repeat and rungs are taken, not re-measured")
    ap.add_argument("--children", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1, help="seed of the children's draw")
    ap.add_argument("--out", help="JSON report (default: none)")
    args = ap.parse_args(argv)
    members, member_fitness, children = population(args.run_dir, args.children, args.seed)
    print(f"{len(members)} members, {len(children)} children", flush=True)
    old = reused(args.reuse, len(members), len(children))
    evaluation = load(os.path.join(args.run_dir, "config.toml")).evaluation
    seeds = tuple(range(evaluation.seeds))
    report = {"args": vars(args), "members": len(members), "children": len(children),
              "member_programs": members, "member_fitness": member_fitness,
              "child_programs": children}
    full = old.get("full") or timed(SerialBackend(evaluation.suite, seeds), children, rung=False)
    report["full"] = full
    print(f"full: {sum(f[2] for f in full):.0f} s for {len(full)} children", flush=True)
    rungs = measure_rungs(evaluation.suite, seeds, members, children, old.get("by_fraction", {}),
                          [("compressed", f, 1.0) for f in _floats(args.fractions)]
                          + [("tail", f, h) for f in _floats(args.tail_fractions)
                             for h in _floats(args.tail_history)])
    report["by_fraction"] = single_rungs(member_fitness, full, rungs, _floats(args.quantiles))
    report["cascades"] = cascades(member_fitness, full, rungs,
                                  _floats(args.cascade_quantiles), _floats(args.quantiles))
    if args.repeat or "repeat" in old:
        report["repeat"] = old.get("repeat") or repeat_check(
            member_fitness, full, *_fresh(evaluation.suite, seeds, members, children))
        r = report["repeat"]
        print(f"fresh seeds: {r['not_top_on_fresh_seeds']} of {r['top_quartile_children']} "
              f"top-quartile children fall below the top quartile; Spearman first/second "
              f"{_fmt(r['spearman_first_second'])}", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)
        print(f"wrote {args.out}")
    return 0


def measure_rungs(suite, seeds, members, children, old: dict, wanted) -> dict:
    """Rung label -> (member rungs, child rungs): taken from `old` where measured there,
    else trained here, one program at a time."""
    out, suite = {}, resolve_suite(suite)
    data = suite.load_data()
    for kind, fraction, history in wanted:
        label = rung_label(kind, fraction, history)
        if label in old:
            out[label] = (old[label]["member_rungs"], old[label]["rungs"])
            continue
        rung = rung_suite(suite, fraction) if kind == "compressed" else \
            tail_suite(suite, fraction, history)
        backend = RungBackend(rung, seeds, data, rung_time_limit(DEFAULT_TIME_LIMIT_S, fraction))
        out[label] = (timed(backend, members, True), timed(backend, children, True))
    return out


class RungBackend:
    """evaluate_job on one rung suite, as SerialBackend evaluates its rung jobs (against
    AdamW on the same rung), for rungs no config names (a tail history other than 1)."""

    def __init__(self, rung, seeds, data, time_limit_s):
        self.rung, self.seeds, self.data, self.time_limit_s = rung, seeds, data, time_limit_s
        self.baseline = baseline_metrics(rung, seeds, "cpu", data)

    def evaluate_job(self, program_text: str, rung: bool):
        return evaluate(program_text, self.rung, self.seeds, "cpu", self.data,
                        self.time_limit_s, self.baseline)


def _fresh(suite, seeds, members, children):
    fresh = SerialBackend(suite, tuple(s + len(seeds) for s in seeds))
    return timed(fresh, members, False), timed(fresh, children, False)


if __name__ == "__main__":
    raise SystemExit(main())

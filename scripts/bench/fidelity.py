"""Proxy fidelity: does the search fitness predict the 10x meta-validation fitness?

A fixed panel of programs is scored twice: by the search fitness (the suite the search
runs on, plain or step-size-swept) and by the meta-validation fitness (the same suite's
tasks at 10x, the funnel's first stage). The figure is Spearman's rank correlation between
the two, over the whole panel and among the programs the search would keep (search
fitness >= --top, or the upper --top-share of the panel: the suites' fitness scales differ,
so a share compares them fairly), with a bootstrap interval. Selection happens at the top,
so that second number is the one that says whether the search optimizes something that
generalizes.

The panel (written once by `panel`, then fixed):
  - the shipped references (primitives/programs/*.py) at step-size factors 1 and 16
    (the default suite tunes AdamW to ~15x its constant, so the panel spans tuned and
    untuned rules);
  - the hand-kept winners of earlier searches (scripts/research/winners/*.py);
  - a sample of a real search population: distinct finished programs of a run directory,
    evenly spaced in rank.

Sub-commands (results are appended to OUT/results.jsonl, one line per evaluation; a
program already scored with the same settings is skipped, so every step can be resumed):

  python -m scripts.bench.fidelity panel --run RUN_DIR      # writes OUT/panel/*.py
  python -m scripts.bench.fidelity panel --run RUN_DIR --extend   # adds a run's sample
  python -m scripts.bench.fidelity meta --suite default --seeds 1 --first-seed 0
  python -m scripts.bench.fidelity search --suite default --lr-sweep 5
  python -m scripts.bench.fidelity report                    # markdown table of rho
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from optsearch.evaluator.evaluate import evaluate
from optsearch.evaluator.lr_sweep import with_lr_factor
from optsearch.evaluator.suites import resolve_suite
from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference

OUT = "bench_out/fidelity"
REFERENCE_FACTORS = (1.0, 16.0)
PANEL_REFERENCES = tuple(n for n in REFERENCE_NAMES if n != "program4")  # program4 is Lion
WINNERS = Path(__file__).resolve().parents[1] / "research" / "winners"
META_TIME_LIMIT_S = 3600.0    # the 10x suite on a loaded machine; a timeout is not a score


def write_panel(out: Path, run_dir: str | None, sample: int, extend: bool = False
                ) -> list[Path]:
    """The panel's program files, named `NN_origin.py`, in a fixed order. With `extend`, only
    the run's sample is added after the files already there (a program whose text is already
    in the panel is skipped), so the scores recorded so far stay valid."""
    folder = out / "panel"
    existing = panel(out) if extend else []
    programs = [] if extend else fixed_programs()
    if run_dir:
        programs += population_sample(run_dir, sample)
    folder.mkdir(parents=True, exist_ok=True)
    texts, paths = {p.read_text() for p in existing}, []
    for name, program in programs:
        text = format_program(program)
        if text in texts:
            continue
        texts.add(text)
        path = folder / f"{len(existing) + len(paths):02d}_{name}.py"
        path.write_text(text)
        paths.append(path)
    return paths


def fixed_programs() -> list[tuple[str, object]]:
    """The panel's part that no run chooses: the references at each step factor, the winners."""
    programs = [(f"{name}_x{factor:g}", with_lr_factor(load_reference(name), factor))
                for name in PANEL_REFERENCES for factor in REFERENCE_FACTORS]
    return programs + [(f"winner_{p.stem}", parse(p.read_text()))
                       for p in sorted(WINNERS.glob("*.py"))]


def population_sample(run_dir: str, k: int) -> list[tuple[str, object]]:
    """k distinct finished programs of a search run, evenly spaced in rank (best first)."""
    from optsearch.search.store import RunStore
    store = RunStore.open(run_dir, readonly=True)
    try:
        rows = store.ranked(evaluated_only=True)
    finally:
        store.close()
    picks = sorted({round(i) for i in np.linspace(0, len(rows) - 1, k)}) if rows else []
    return [(f"search_c{rows[i]['id']}", parse(rows[i]["program"])) for i in picks]


def panel(out: Path, pattern: str = "*", folder: str = "panel") -> list[Path]:
    return sorted((out / folder).glob(f"{pattern}.py"))


def folded_target(out: Path, row: dict) -> str:
    """Which program a swept row's fitness is about: the panel program with the chosen step
    folded in (what a swept search stores). Its name: the panel or folded/ file with that
    text, written to folded/ when there is none yet."""
    text = (out / "panel" / f"{row['program']}.py").read_text()
    if row.get("lr_factor", 1.0) == 1.0:
        return row["program"]
    target = format_program(with_lr_factor(parse(text), row["lr_factor"]))
    for path in panel(out) + panel(out, folder="folded"):
        if path.read_text() == target:
            return path.stem
    path = out / "folded" / f"{row['program']}_f{row['lr_factor']:g}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(target)
    return path.stem


def _rows(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def score_panel(out: Path, kind: str, suite_name: str, seeds: tuple, lr_sweep: int = 1,
                pattern: str = "*") -> None:
    """Evaluate every panel program not yet scored with these settings; append the results.

    Meta-validation rows are per seed (a seed's aggregate is paired with AdamW on that seed,
    so seeds scored in separate runs combine by a geometric mean); search rows use all
    `seeds` at once, as the search does."""
    suite = resolve_suite(suite_name if kind == "search" else f"{suite_name}@10")
    limit = None if kind == "search" else META_TIME_LIMIT_S
    done = {(r["program"], r["kind"], r["suite"], tuple(r["seeds"]), r["lr_sweep"])
            for r in _rows(out)}
    paths = panel(out, pattern, "folded" if kind == "meta-folded" else "panel")
    kind = "meta" if kind == "meta-folded" else kind
    for path in paths:
        if (path.stem, kind, suite_name, seeds, lr_sweep) in done:
            continue
        t0 = time.perf_counter()
        fitness = evaluate(path.read_text(), suite, seeds, time_limit_s=limit,
                           lr_sweep=lr_sweep)
        row = {"program": path.stem, "kind": kind, "suite": suite_name, "seeds": list(seeds),
               "lr_sweep": lr_sweep, "lr_factor": fitness.lr_factor, "aggregate": fitness.aggregate,
               "status": fitness.status,
               "seed_aggregates": fitness.seed_aggregates(),
               "wall_s": round(time.perf_counter() - t0, 2),
               "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
        with open(out / "results.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{kind} {suite_name} N={lr_sweep}: {path.stem}: {fitness.aggregate:.3f} "
              f"({fitness.status}, {row['wall_s']} s)", flush=True)


def ranks(values) -> np.ndarray:
    """Average ranks (ties share the mean rank), as Spearman's rho needs them."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    r = np.empty(len(values))
    r[order] = np.arange(len(values), dtype=float)
    for v in np.unique(values):
        tied = values == v
        r[tied] = r[tied].mean()
    return r


def spearman(x, y) -> float:
    """Spearman's rho: Pearson's correlation of the ranks (nan when either side is constant)."""
    rx, ry = ranks(x), ranks(y)
    if len(rx) < 3 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def spearman_interval(x, y, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of Spearman's rho, resampling programs: a panel of
    15-20 top programs leaves rho uncertain by several tenths, and a goal is only met if the
    interval says so (resamples with a constant side are skipped)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        i = rng.integers(0, len(x), len(x))
        rho = spearman(x[i], y[i])
        if not np.isnan(rho):
            values.append(rho)
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def meta_fitness(rows) -> dict:
    """(suite, program) -> (meta-validation fitness, seeds): the geometric mean of every
    scored seed's aggregate (0 when any seed failed)."""
    per_seed: dict = {}
    for r in rows:
        if r["kind"] == "meta":
            per_seed.setdefault((r["suite"], r["program"]), {}).update(
                zip(r["seeds"], r["seed_aggregates"]))
    out = {}
    for key, by_seed in per_seed.items():
        values = np.array(list(by_seed.values()))
        value = 0.0 if values.min() <= 0 else float(np.exp(np.log(values).mean()))
        out[key] = (value, tuple(sorted(by_seed)))
    return out


def report(out: Path, top: float, top_share: float | None = None) -> None:
    """Markdown: rho between each search-fitness definition and meta-validation, per suite.
    A swept definition is paired twice: with the 10x fitness of the program as written, and
    with that of the program its sweep would store (the chosen step folded in)."""
    rows = _rows(out)
    meta = meta_fitness(rows)
    print("| suite | search fitness | meta-validated program | meta seeds | n | rho (all) "
          "| top: fitness >= | n top | rho (top) | 95% interval (top) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    definitions = sorted({(r["suite"], r["lr_sweep"], len(r["seeds"])) for r in rows
                          if r["kind"] == "search"})
    for suite, n_sweep, n_seeds in definitions:
        chosen = [r for r in rows if r["kind"] == "search"
                  and (r["suite"], r["lr_sweep"], len(r["seeds"])) == (suite, n_sweep, n_seeds)]
        targets = [("as written", lambda r: r["program"])]
        if n_sweep > 1:
            targets.append(("chosen step folded in", lambda r: folded_target(out, r)))
        for label, target in targets:
            pairs = [(r["aggregate"], meta[(suite, target(r))]) for r in chosen
                     if (suite, target(r)) in meta]
            if pairs:
                definition = "plain" if n_sweep == 1 else f"lr-swept N={n_sweep}"
                meta_seeds = "/".join(map(str, sorted({len(m[1]) for _, m in pairs})))
                _print_rho(f"| {suite} | {definition}, {n_seeds} seeds | {label} | {meta_seeds} |",
                           pairs, top, top_share)
    print_cross(rows, meta, top, top_share)
    print_programs(rows, meta)


def print_cross(rows, meta, top, top_share) -> None:
    """Rho of each suite's plain search fitness against every suite's meta-validation:
    does one suite's search fitness predict another's 10x better than its own?"""
    value = {(r["suite"], r["program"]): r["aggregate"] for r in rows
             if r["kind"] == "search" and r["lr_sweep"] == 1}
    searched = sorted({suite for suite, _ in value})
    validated = sorted({suite for suite, _ in meta})
    print("\n| plain search fitness on | meta-validated on | n | rho (all) "
          "| top: fitness >= | n top | rho (top) | 95% interval (top) |")
    print("|---|---|---|---|---|---|---|---|")
    for search_suite in searched:
        for meta_suite in validated:
            pairs = [(v, meta[(meta_suite, program)]) for (suite, program), v in value.items()
                     if suite == search_suite and (meta_suite, program) in meta]
            if pairs:
                _print_rho(f"| {search_suite} | {meta_suite} |", pairs, top, top_share)


def _print_rho(lead: str, pairs, top, top_share) -> None:
    """One table row: `lead` (the row's label cells), then rho over all pairs and at the top."""
    x = np.array([p[0] for p in pairs])
    y = np.array([p[1][0] for p in pairs])
    if top_share is not None:
        top = float(np.quantile(x, 1.0 - top_share))
    kept = x >= top
    low, high = spearman_interval(x[kept], y[kept])
    print(f"{lead} {len(x)} | "
          f"{spearman(x, y):.2f} | {top:.3g} | {int(kept.sum())} | "
          f"{spearman(x[kept], y[kept]):.2f} | {low:.2f} to {high:.2f} |")


def print_programs(rows, meta) -> None:
    """Per program: every search-fitness definition's value, then each suite's
    meta-validation value (one column per suite: each suite validates at its own 10x)."""
    columns = sorted({(r["suite"], r["lr_sweep"], len(r["seeds"])) for r in rows
                      if r["kind"] == "search"})
    value = {(r["suite"], r["lr_sweep"], len(r["seeds"]), r["program"]): r["aggregate"]
             for r in rows if r["kind"] == "search"}
    suites = sorted({suite for suite, _ in meta})
    names = [f"{s} N={n} K={k}" for s, n, k in columns] + [f"{s}@10" for s in suites]
    print("\n| program | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for program in sorted({r["program"] for r in rows}):
        cells = [value.get((*c, program)) for c in columns]
        cells += [meta[(s, program)][0] if (s, program) in meta else None for s in suites]
        text = " | ".join("" if v is None else f"{v:.3f}" for v in cells)
        print(f"| {program} | {text} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="fidelity", description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("panel", "meta", "search", "fold", "meta-folded",
                                       "report"))
    p.add_argument("--out", default=OUT)
    p.add_argument("--run", default=None, help="panel: run directory to sample")
    p.add_argument("--sample", type=int, default=10, help="panel: programs from --run")
    p.add_argument("--extend", action="store_true",
                   help="panel: add --run's sample to the existing panel (scores are kept)")
    p.add_argument("--suite", default="default")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--lr-sweep", type=int, default=1)
    p.add_argument("--programs", default="*", help="meta/search: panel files matching this glob")
    p.add_argument("--top", type=float, default=1.5, help="report: the search keeps >= this")
    p.add_argument("--top-share", type=float, default=None,
                   help="report: the search keeps this upper share of each definition's panel "
                        "(overrides --top)")
    args = p.parse_args(argv)
    out = Path(args.out)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.command == "panel":
        for path in write_panel(out, args.run, args.sample, args.extend):
            print(path)
    elif args.command == "report":
        report(out, args.top, args.top_share)
    elif args.command == "fold":   # the folded programs of the swept rows, for meta-folded
        for r in _rows(out):
            if r["kind"] == "search" and r["lr_sweep"] > 1:
                print(r["program"], "->", folded_target(out, r))
    else:
        seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))
        score_panel(out, args.command, args.suite, seeds, args.lr_sweep, args.programs)


if __name__ == "__main__":
    main()

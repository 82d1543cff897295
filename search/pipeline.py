"""The main job as a library call: search -> funnel -> simplify -> recognise -> export.

    result = run_main_job(run_dir, config, initial, minutes=11, scales=(10,), top_k=3)
    result = distill(run_dir, config, scales=(10,), top_k=3)   # a finished search: funnel on

A search (AdamW warm start, the calibrated proxy suite, the configured backend) for a
wall-time budget; funnel selection re-checks the best distinct programs on the 10x
meta-validation suite; the run's winner (`RunStore.winner`) is simplified (sympy rules, then
ablation measured over seeds), recognised, exported as a torch optimizer, and compared with
AdamW and Lion on meta-validation.

The comparison includes AdamW and Lion with their step size tuned the way the search's warm
start is (search.init_lr_factors, best on the search suite): against the references at their
fixed lr 1e-3 / 1e-4 any program that merely found a better step size would look like a win.

Progress goes through `log(line)`; the search itself through `runner(driver, deadline)`, so a
caller can watch it (a progress bar) without the pipeline knowing how.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from optsearch.evaluator.noise import mean_stderr
from optsearch.search.backend import backend_for, worker_count
from optsearch.search.config import Config
from optsearch.search.distill.funnel import StageResult, evaluate_all, run_funnel, stage_suite
from optsearch.search.driver import start_run
from optsearch.search.store import RunStore

WINNER_FILE, SIMPLIFIED_FILE, OPTIMIZER_FILE = "winner.py", "simplified.py", "optimizer.py"
RAW, SIMPLIFIED = "discovered (raw)", "discovered (simplified)"


class NoWinner(RuntimeError):
    """The search finished no program successfully: nothing to simplify or export."""


@dataclass(frozen=True)
class MainJobResult:
    run_dir: str
    winner: str                  # the run's winner (program text), as the funnel chose it
    simplification: object       # search.distill.simplify.Simplification of the winner
    stages: list[list[StageResult]]
    suite: str                   # the meta-validation suite of the comparison
    table: dict[str, tuple[float, float]]  # name -> (mean, s.e.) on that suite; AdamW = 1.0
    statuses: dict[str, str]     # name -> evaluation status ("ok" unless it failed)
    shipped: str                 # the table entry that was exported (RAW or SIMPLIFIED)
    how: str                     # why that form: "simplified" or the reason for the raw one
    exported: str                # path of the exported optimizer


# ---------------------------------------------------------------- the search
def stop_at(deadline: float):
    """An on_step hook: past `deadline` (a time.monotonic() value) propose nothing more; what
    is in flight still finishes."""
    def hook(driver) -> None:
        if time.monotonic() > deadline:
            driver.budget = min(driver.budget, driver.counters["screened"] + len(driver.pending))
    return hook


def run_to_deadline(driver, deadline: float) -> None:
    """The default runner: the driver to its budget or the deadline, whichever comes first."""
    driver.on_step = stop_at(deadline)
    try:
        driver.run()
    finally:
        driver.close()


def search(run_dir: str, config: Config, initial, minutes: float, runner=run_to_deadline,
           log=print) -> None:
    """A new search in `run_dir` for `minutes` of wall time (or config.search.budget
    evaluations); `initial` None starts from random programs."""
    driver = start_run(run_dir, config, initial)
    deadline = time.monotonic() + 60.0 * minutes
    ev = config.evaluation
    log(f"search: {run_dir} ({minutes:g} min, backend {ev.backend}, {worker_count(ev)} workers, "
        f"suite {ev.suite})")
    runner(driver, deadline)


# ---------------------------------------------------------------- after the search
def backend_factory(config: Config):
    """factory(suite) -> the configured backend on another suite, the run's seeds."""
    def factory(suite):
        return backend_for(config.evaluation, suite=suite)
    return factory


def funnel(run_dir: str, config: Config, scales, top_k: int, log=print):
    """Funnel selection; returns (the run's winner as program text, the stages)."""
    store = RunStore.open(run_dir)
    try:
        stages = run_funnel(store, backend_factory(config), config.evaluation.suite,
                            scales=tuple(scales), top_k=top_k, log=log)
        for stage in stages:
            for r in stage:
                log(f"  candidate {r.candidate_id:5d} on {r.suite}: {r.aggregate:.3f} "
                    f"± {r.stderr:.3f} vs AdamW 1.0 -> {'pass' if r.passed else 'stop'}")
        winner = store.winner()
    finally:
        store.close()
    if winner is None:
        raise NoWinner("the search finished no program successfully")
    return winner.program, stages


def simplify_winner(text: str, config: Config):
    """simplify() with ablations measured by the fitness over the run's seeds; a change of
    the rule's character is judged on the meta-validation suite at 10x (the funnel's)."""
    from optsearch.evaluator.measure import suite_measure
    from optsearch.primitives import parse
    from optsearch.search.distill.simplify import simplify

    seeds = range(config.evaluation.seeds)
    return simplify(parse(text), measure=suite_measure(config.evaluation.suite, seeds),
                    measure_meta=suite_measure(stage_suite(config.evaluation.suite, 10), seeds))


def lr_tuned_references(config: Config, names=("adamw", "lion")) -> dict:
    """name -> (lr factor, program text): each reference at the best of the warm start's lr
    factors on the search suite."""
    from optsearch.primitives.printer import format_program
    from optsearch.primitives.reference import load_reference
    from optsearch.search.evolution import selection_value
    from optsearch.search.warm_start import lr_sweep, parse_factors

    factors = parse_factors(config.search.init_lr_factors)
    jobs = [(name, f, format_program(p)) for name in names
            for f, p in zip(factors, lr_sweep(load_reference(name), factors))]
    with backend_factory(config)(config.evaluation.suite) as backend:
        fitness = evaluate_all(backend, {k: text for k, (_, _, text) in enumerate(jobs)})
    best = {}
    for name in names:
        k = max((k for k, job in enumerate(jobs) if job[0] == name),
                key=lambda k: selection_value(fitness[k].aggregate))  # ties: the first factor
        best[name] = jobs[k][1:]
    return best


def compare(config: Config, programs: dict, scale: int):
    """(suite name, name -> (mean, s.e.), name -> status) of each program on the
    meta-validation suite at `scale` (AdamW = 1.0 by construction)."""
    suite = stage_suite(config.evaluation.suite, scale)
    with backend_factory(config)(suite) as backend:
        names = list(programs)
        done = evaluate_all(backend, {k: programs[name] for k, name in enumerate(names)})
    fitness = {name: done[k] for k, name in enumerate(names)}
    return (suite.name, {name: mean_stderr(f) for name, f in fitness.items()},
            {name: getattr(f, "status", "ok") for name, f in fitness.items()})


def choose_export(table, result, raw_text):
    """Ship the simplified program unless meta-validation says it lost beyond noise.

    Ablations are accepted within noise at search scale; a change that is harmless there
    can still hurt on the 10x tasks, so the larger suite has the last word (2 s.e.)."""
    from optsearch.primitives import parse

    (m_raw, e_raw), (m_simple, e_simple) = table[RAW], table[SIMPLIFIED]
    if m_simple >= m_raw - 2.0 * math.hypot(e_raw, e_simple):
        rec = result.recognition
        program = rec.program if rec.name != "new" else result.program
        return program, (rec if rec.name != "new" else None), "simplified"
    return parse(raw_text), None, "raw (the simplified form lost on meta-validation)"


def verdict(table: dict, shipped: str) -> str:
    """One line: does the shipped program beat the best lr-tuned reference on meta-validation
    beyond noise (2 combined s.e.)? The untuned references are not the bar: a program that
    merely found a better step size beats them by the step size alone."""
    mean, err = table[shipped]
    tuned = {name: v for name, v in table.items() if name.endswith("tuned)")}
    best = max(tuned, key=lambda name: tuned[name][0])
    b_mean, b_err = tuned[best]
    margin = 2.0 * math.hypot(err, b_err)
    if mean > b_mean + margin:
        word = "beats"
    elif mean < b_mean - margin:
        word = "LOSES to"
    else:
        word = "is level with"
    return (f"verdict: the exported program ({mean:.3f}) {word} the best lr-tuned reference, "
            f"{best} ({b_mean:.3f}), on meta-validation (2 s.e. = {margin:.3f})")


def export(run_dir: str, program, recognition) -> str:
    from optsearch.primitives.export import default_class_name, export_source

    class_name = default_class_name(recognition)
    out = os.path.join(run_dir, OPTIMIZER_FILE)
    with open(out, "w") as fh:
        fh.write(export_source(program, class_name=class_name, recognition=recognition))
    return out


def save_programs(run_dir: str, texts: dict) -> None:
    """The funnel winner and its simplified form as program files, so that other tools
    (optsearch evaluate / simplify, scripts/research/generalization) can take them directly."""
    for name, text in texts.items():
        with open(os.path.join(run_dir, name), "w") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")


def distill(run_dir: str, config: Config, scales=(10,), top_k: int = 3,
            log=print) -> MainJobResult:
    """Everything after the search, on a finished run directory."""
    from optsearch.primitives.printer import format_program
    from optsearch.primitives.reference import reference_text

    log("funnel selection:")
    winner, stages = funnel(run_dir, config, scales, top_k, log)
    log("simplifying the winner (ablations measured over seeds)...")
    result = simplify_winner(winner, config)
    simplified = format_program(result.program)
    tuned = lr_tuned_references(config)
    suite, table, statuses = compare(config, {
        RAW: winner, SIMPLIFIED: simplified,
        "AdamW (reference)": reference_text("adamw"),
        "Lion (reference, lr 1e-4)": reference_text("lion"),
        f"AdamW (lr x{tuned['adamw'][0]:g}, tuned)": tuned["adamw"][1],
        f"Lion (lr x{tuned['lion'][0]:g}, tuned)": tuned["lion"][1]}, scales[0])
    program, recognition, how = choose_export(table, result, winner)
    exported = export(run_dir, program, recognition)
    save_programs(run_dir, {WINNER_FILE: winner, SIMPLIFIED_FILE: simplified})
    return MainJobResult(run_dir, winner, result, stages, suite, table, statuses,
                         SIMPLIFIED if how == "simplified" else RAW, how, exported)


def run_main_job(run_dir: str, config: Config, initial, minutes: float, scales=(10,),
                 top_k: int = 3, runner=run_to_deadline, log=print) -> MainJobResult:
    """The whole main job: a new search in `run_dir`, then `distill`."""
    search(run_dir, config, initial, minutes, runner, log)
    return distill(run_dir, config, scales, top_k, log)

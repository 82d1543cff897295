"""evaluate(program, suite, seeds) -> Fitness: compile once, train on every task, normalise.

Pure apart from the on-disk baseline cache: the same program, suite and seeds give the same
Fitness on the same device. It never raises for a bad program -- a program that does not
parse or check is "invalid", one whose compiled code raises is "error", and the task reports
"diverged"/"timeout" itself. Configuration mistakes (an unknown suite) do raise: they are
the caller's bug, not a property of the program.
"""

from __future__ import annotations

import time

from optsearch.evaluator.baseline import baseline_metrics
from optsearch.evaluator.fitness import Fitness, TaskFitness
from optsearch.evaluator.lr_sweep import SweepRule, select_step, sweep_factors
from optsearch.evaluator.suites import resolve_suite
from optsearch.evaluator.train import compile_checked, run_tasks
from optsearch.primitives.analysis import check
from optsearch.primitives.parser import parse
from optsearch.primitives.program import Program, ProgramError

DEFAULT_SEEDS = (0, 1, 2, 3)
DEFAULT_TIME_LIMIT_S = 120.0   # per evaluation (all tasks together); scale-1 suites take ~2 s


def evaluate(program, suite="default", seeds=DEFAULT_SEEDS, device="cpu", data=None,
             time_limit_s=DEFAULT_TIME_LIMIT_S, baseline=None, lr_sweep: int = 1) -> Fitness:
    """Fitness of `program` (a Program or its text) on `suite` with `seeds`.

    data: task key -> task data, to reuse data loaded once (Ray workers get it from the
    object store). baseline: task key -> AdamW metric per seed (from evaluator.baseline);
    looked up in the disk cache when not given. lr_sweep: N > 1 scores the program at its
    best of N step sizes (evaluator.lr_sweep); Fitness.lr_factor says which.
    """
    suite, seeds = resolve_suite(suite), tuple(int(s) for s in seeds)
    factors = sweep_factors(lr_sweep)
    if len(factors) > 1 and len(seeds) < 2:
        raise ValueError("an lr sweep needs at least 2 seeds (one to choose, one to report)")
    if baseline is None:
        baseline = baseline_metrics(suite, seeds, device=device, data=data)
    t0 = time.perf_counter()
    meta = {"seeds": seeds, "suite": suite.name, "suite_version": suite.version}
    try:
        rule = _compile(program, factors, len(seeds))
    except ProgramError as exc:
        where = f"line {exc.line}: " if exc.line else ""
        return Fitness.failure("invalid", where + exc.message, **meta)
    except Exception as exc:  # noqa: BLE001 - a program must never crash the evaluator
        return Fitness.failure("error", _describe(exc), cost_s=time.perf_counter() - t0, **meta)
    try:
        results = run_tasks(rule, suite, seeds * len(factors), device, data, time_limit_s,
                            groups=len(factors))
    except Exception as exc:  # noqa: BLE001 - e.g. a shape error raised inside the program
        return Fitness.failure("error", _describe(exc), cost_s=time.perf_counter() - t0, **meta)
    cost = time.perf_counter() - t0
    if len(factors) == 1:
        tasks = {key: TaskFitness.scored(r.metric, baseline[key], r.lower_is_better, r.status,
                                         r.steps, r.seconds)
                 for key, r in results.items()}
        return Fitness.from_tasks(tasks, seeds, cost, suite.name, suite.version)
    groups = [_group_fitness(results, baseline, g, seeds, cost, suite)
              for g in range(len(factors))]
    return select_step(groups, factors)


def _compile(program, factors, group_size):
    """The compiled rule; with several step factors, one rule for all scaled programs."""
    if len(factors) == 1:
        return compile_checked(program)
    if not isinstance(program, Program):
        program = parse(program)
    check(program)
    return SweepRule(program, factors, group_size)


def _group_fitness(results, baseline, g, seeds, cost, suite) -> Fitness:
    """Group g's Fitness, as its program alone would get it: up to its first failing task."""
    k, tasks = len(seeds), {}
    for key, r in results.items():
        status = r.group_status[g] if r.group_status else r.status
        steps = r.group_steps[g] if r.group_steps else r.steps
        tasks[key] = TaskFitness.scored(r.metric[g * k:(g + 1) * k], baseline[key],
                                        r.lower_is_better, status, steps, r.seconds)
        if status != "ok":
            break
    return Fitness.from_tasks(tasks, seeds, cost, suite.name, suite.version)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"

"""`optsearch evaluate FILE [--suite S] [--seeds N] [--workers W] [--json]`: score a program.

With one worker the program is evaluated in this process; with more, through the Ray
backend (local Ray, or the cluster at --address), which is the path the search uses.
"""

from __future__ import annotations

import json

from optsearch.cli.errors import UserError
from optsearch.cli.programs import read_program
from optsearch.evaluator import BackendUnavailable, evaluate, make_backend
from optsearch.evaluator.evaluate import DEFAULT_TIME_LIMIT_S
from optsearch.primitives.printer import format_program


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="train on the proxy-task suite; fitness per task")
    p.add_argument("file", help="program file, or a reference name such as 'lion'")
    p.add_argument("--suite", default="default", help="proxy-task suite (default: default)")
    p.add_argument("--seeds", type=int, default=4, help="number of seeds, 0..N-1 (default 4)")
    p.add_argument("--workers", type=int, default=1,
                   help="1: evaluate in-process; more: through the Ray backend")
    p.add_argument("--address", default=None, help="join this Ray cluster (implies Ray)")
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S,
                   help="seconds per evaluation before it counts as a timeout")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fitness(args, program):
    seeds = tuple(range(args.seeds))
    if args.workers <= 1 and not args.address:
        return evaluate(program, args.suite, seeds, time_limit_s=args.time_limit)
    with make_backend("ray", workers=args.workers, address=args.address, suite=args.suite,
                      seeds=seeds, time_limit_s=args.time_limit) as backend:
        backend.submit(0, format_program(program))
        results = []
        while not results:
            results = backend.poll(timeout_s=None)
        return results[0][1]


def run(args) -> int:
    if args.seeds < 1:
        raise UserError("--seeds must be at least 1")
    program = read_program(args.file)
    try:
        fitness = _fitness(args, program)
    except (KeyError, BackendUnavailable) as exc:   # unknown suite or task: the user's input
        raise UserError(str(exc.args[0])) from None
    if args.json:
        print(json.dumps({"file": args.file, **fitness.to_dict()}, indent=2))
    else:
        print_table(args.file, fitness)
    return 0


def print_table(name: str, fitness) -> None:
    print(f"program: {name}   suite: {fitness.suite} ({fitness.suite_version})   "
          f"seeds: {','.join(map(str, fitness.seeds))}")
    print(f"  {'task':<24} {'metric':>9} {'adamw':>9} {'score':>7}  per-seed metric")
    for key, task in fitness.tasks.items():
        base = sum(task.baseline) / len(task.baseline) if task.baseline else float("nan")
        seeds = " ".join(f"{m:.4g}" for m in task.per_seed)
        print(f"  {key:<24} {task.metric_mean:>9.4g} {base:>9.4g} {task.score:>7.3f}  {seeds}"
              + ("" if task.status == "ok" else f"  [{task.status}]"))
    print(f"aggregate: {fitness.aggregate:.4f}   status: {fitness.status}   "
          f"cost: {fitness.cost_s:.1f} s")
    if fitness.message:
        print(f"note: {fitness.message}")

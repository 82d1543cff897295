"""`optsearch evaluate FILE [--suite S] [--seeds N] [--lr-sweep N] [--workers W] [--json]`.

Scores a program. `--suite S@10` / `S@100` evaluates on suite S's meta-validation suites (the
funnel's stages); `--lr-sweep N` scores it at its best of N step sizes (evaluator.lr_sweep).
With one worker the program is evaluated in this process; with more, through the Ray
backend (local Ray, or the cluster at --address), which is the path the search uses.
"""

from __future__ import annotations

import json

from optsearch.cli.errors import UserError
from optsearch.cli.programs import read_program
from optsearch.evaluator import BackendUnavailable, evaluate, make_backend
from optsearch.evaluator.evaluate import DEFAULT_TIME_LIMIT_S
from optsearch.evaluator.suites import resolve_suite
from optsearch.primitives.printer import format_program


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="train on the proxy-task suite; fitness per task")
    p.add_argument("file", help="program file, or a reference name such as 'lion'")
    p.add_argument("--suite", default="default",
                   help="proxy-task suite, or S@10 / S@100 for its meta-validation suites "
                        "(default: default)")
    p.add_argument("--seeds", type=int, default=4, help="number of seeds, 0..N-1 (default 4)")
    p.add_argument("--lr-sweep", type=int, default=1, metavar="N",
                   help="score at the best of N step sizes, 4x apart around the program's "
                        "(chosen on half the seeds, reported on the rest; default 1: no sweep)")
    p.add_argument("--workers", type=int, default=1,
                   help="1: evaluate in-process; more: through the Ray backend")
    p.add_argument("--address", default=None,
                   help="join this Ray cluster, 'auto' or HOST:PORT (implies Ray)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="GPUs per Ray worker (implies Ray); the evaluation runs on CUDA")
    p.add_argument("--verbose", action="store_true", help="also show Ray's log lines")
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S,
                   help="seconds per evaluation before it counts as a timeout")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fitness(args, program):
    seeds = tuple(range(args.seeds))
    if args.workers <= 1 and not args.address and not args.gpus_per_worker:
        return evaluate(program, args.suite, seeds, time_limit_s=args.time_limit,
                        lr_sweep=args.lr_sweep)
    from optsearch.evaluator.ray_backend import RayLogRouting
    with RayLogRouting(verbose=args.verbose), make_backend(
            "ray", workers=args.workers, address=args.address, suite=args.suite, seeds=seeds,
            time_limit_s=args.time_limit, lr_sweep=args.lr_sweep,
            gpus_per_worker=args.gpus_per_worker) as backend:
        backend.submit(0, format_program(program))
        results = []
        while not results:
            results = backend.poll(timeout_s=None)
        return results[0][1]


def run(args) -> int:
    if args.seeds < 1:
        raise UserError("--seeds must be at least 1")
    if args.lr_sweep < 1:
        raise UserError("--lr-sweep must be at least 1 (1 = no sweep)")
    if args.lr_sweep > 1 and args.seeds < 2:
        raise UserError("--lr-sweep needs --seeds 2 or more (one half chooses, one reports)")
    try:
        args.suite = resolve_suite(args.suite)   # before any work: a bad name is user input
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    if not args.gpus_per_worker >= 0:
        raise UserError("--gpus-per-worker must be >= 0")
    program = read_program(args.file)
    try:
        fitness = _fitness(args, program)
    except (KeyError, BackendUnavailable) as exc:   # unknown task, or no backend: the user's input
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
    if fitness.lr_factor != 1.0:
        print(f"step: x{fitness.lr_factor:g} folded into the lr constant reproduces the "
              "per-seed metrics above (aggregate: held-out seeds only)")
    if fitness.message:
        print(f"note: {fitness.message}")

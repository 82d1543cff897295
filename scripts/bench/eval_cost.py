"""Seconds per evaluation of one program on a suite, optionally against another checkout.

    .venv/bin/python -m scripts.bench.eval_cost --suite default [--against DIR] [--rounds 3]

Times `evaluator.evaluate` (serial, one intra-op thread, as in a worker; data loaded once,
a fixed baseline so no AdamW baseline run is timed) for the program `--program` (default:
the Lion reference) and prints the best of `--repeats`. With `--against DIR` (e.g. a
`git worktree` of an earlier commit) the same measurement runs in a subprocess in DIR and in
this checkout, alternating `--rounds` times, and the ratio this/that of the best times is
printed: machines are noisy, so only the ratio of interleaved runs means much.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def seconds_per_evaluation(suite_name: str, program_path: str, seeds: int, repeats: int) -> float:
    import torch

    from optsearch.evaluator.evaluate import evaluate
    from optsearch.evaluator.suites import resolve_suite

    torch.set_num_threads(1)
    suite = resolve_suite(suite_name)
    data = {key: task.load_data() for key, task in suite.tasks.items()}
    baseline = {key: [1.0] * seeds for key in suite.tasks}
    with open(program_path) as f:
        text = f.read()
    times = []
    for _ in range(repeats + 1):   # the first run is a warm-up
        t0 = time.perf_counter()
        evaluate(text, suite, seeds=range(seeds), data=data, baseline=baseline)
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def measure_in(checkout: str, args) -> float:
    """The same measurement in another checkout's code: a fresh interpreter of that checkout's
    own .venv (its editable install maps `optsearch.*` to its files). This file runs as a
    script, so the other checkout needs no copy of it, but it must use the `optsearch.*`
    layout and have run `bash scripts/setup.sh`."""
    python = os.path.join(checkout, ".venv", "bin", "python")
    if not os.path.exists(python):
        sys.exit(f"error: {checkout}: no .venv (run 'bash scripts/setup.sh' there first)")
    cmd = [python, os.path.abspath(__file__), "--suite", args.suite,
           "--program", os.path.abspath(args.program), "--seeds", str(args.seeds),
           "--repeats", str(args.repeats), "--bare"]
    out = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="default")
    ap.add_argument("--program", default=os.path.join(ROOT, "primitives/programs/lion.py"))
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--against", metavar="DIR", help="another checkout to compare with")
    ap.add_argument("--rounds", type=int, default=3, help="alternations with --against")
    ap.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bare:
        print(seconds_per_evaluation(args.suite, args.program, args.seeds, args.repeats))
        return 0
    if not args.against:
        s = seconds_per_evaluation(args.suite, args.program, args.seeds, args.repeats)
        print(f"{args.suite}: {s:.3f} s per evaluation ({args.seeds} seeds)")
        return 0
    here, there = [], []
    for _ in range(args.rounds):
        there.append(measure_in(os.path.abspath(args.against), args))
        here.append(measure_in(ROOT, args))
    print(f"{args.suite}: this checkout {min(here):.3f} s, {args.against} {min(there):.3f} s "
          f"per evaluation ({args.seeds} seeds); ratio {min(here) / min(there):.2f}x "
          f"(runs: {', '.join(f'{h:.2f}/{t:.2f}' for h, t in zip(here, there))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

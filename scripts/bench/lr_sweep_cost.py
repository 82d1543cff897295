"""Cost of the step-size sweep: seconds per evaluation at lr_sweep = N against N = 1.

    .venv/bin/python -m scripts.bench.lr_sweep_cost --suite default --sweep 5 --rounds 3

Times `evaluator.evaluate` in this process (one intra-op thread, as in a worker; data loaded
once; a fixed baseline, so no AdamW baseline run is timed) for each program, alternating
N = 1 and N = --sweep `--rounds` times. Machines are noisy: the figure is the ratio of the
best swept time to the best plain time, measured interleaved in the same process.
"""

from __future__ import annotations

import argparse
import time

import torch

from optsearch.evaluator.evaluate import evaluate
from optsearch.evaluator.suites import resolve_suite
from optsearch.primitives.reference import reference_text

PROGRAMS = ("adamw", "lion", "signum")


def best_seconds(text, suite, seeds, data, baseline, sweep, rounds) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        evaluate(text, suite, seeds, data=data, baseline=baseline, time_limit_s=None,
                 lr_sweep=sweep)
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="default")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--sweep", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--programs", nargs="+", default=list(PROGRAMS))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    suite = resolve_suite(args.suite)
    data = suite.load_data()
    seeds = tuple(range(args.seeds))
    baseline = {key: [1.0] * args.seeds for key in suite.tasks}
    print(f"| program | N=1 s | N={args.sweep} s | ratio |\n|---|---|---|---|")
    ratios = []
    for name in args.programs:
        text = reference_text(name)
        evaluate(text, suite, seeds, data=data, baseline=baseline)   # warm-up (compile, caches)
        plain, swept = [], []
        for _ in range(args.rounds):   # interleaved, so load changes hit both alike
            plain.append(best_seconds(text, suite, seeds, data, baseline, 1, 1))
            swept.append(best_seconds(text, suite, seeds, data, baseline, args.sweep, 1))
        ratio = min(swept) / min(plain)
        ratios.append(ratio)
        print(f"| {name} | {min(plain):.2f} | {min(swept):.2f} | {ratio:.2f} |", flush=True)
    print(f"geometric mean ratio N={args.sweep} / N=1 on {args.suite}, {args.seeds} seeds: "
          f"{float(torch.tensor(ratios).log().mean().exp()):.2f}")


if __name__ == "__main__":
    main()

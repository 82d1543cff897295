"""Cost of one imitation evaluation (target mode) against one proxy-task evaluation.

    .venv/bin/python -m scripts.bench.imitation [--target lion] [--repeats 20]

Times `evaluator.imitation.imitation_fitness` of the AdamW and Lion reference programs on
the default gradient stream of `--target` (recorded once; its cost is printed too), and, as
the reference measured in the same process, `evaluator.evaluate` of the same programs on the
default proxy suite (4 seeds, a fixed baseline so no AdamW baseline run is timed). One intra-op
thread, as in a search. Medians of `--repeats` (proxy: of `--proxy-repeats`); the ratio is
what to compare across machines.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from optsearch.evaluator.evaluate import evaluate
from optsearch.evaluator.imitation import DEFAULT_STREAM, imitation_fitness, record_stream
from optsearch.evaluator.suites import resolve_suite
from optsearch.evaluator.targets import resolve_target
from optsearch.primitives.reference import reference_text


def _median_s(fn, repeats: int) -> float:
    fn()  # warm-up: compilation, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="lion")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--proxy-repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    stream = record_stream(resolve_target(args.target), DEFAULT_STREAM)
    print(f"record the {args.target} stream ({DEFAULT_STREAM.steps} steps, "
          f"{stream.seeds} seeds x {stream.w.shape[-1]} weights): "
          f"{time.perf_counter() - t0:.2f} s (once per run)")
    suite = resolve_suite("default")
    data = suite.load_data()
    baseline = {key: [1.0] * 4 for key in suite.tasks}
    for name in ("adamw", "lion"):
        text = reference_text(name)
        imitation = _median_s(lambda t=text: imitation_fitness(t, stream), args.repeats)
        proxy = _median_s(lambda t=text: evaluate(t, suite, range(4), data=data,
                                                  baseline=baseline), args.proxy_repeats)
        print(f"{name}: imitation {imitation * 1e3:.1f} ms, proxy suite {proxy:.2f} s, "
              f"ratio {imitation / proxy:.4f} ({proxy / imitation:.0f}x cheaper)")


if __name__ == "__main__":
    main()

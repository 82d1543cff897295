"""Throughput of K seeds trained as one stacked model vs K sequential single-seed runs.

    .venv/bin/python scripts/bench_seeds.py --task digits_mlp --k 8

Prints seconds for both and the throughput ratio (goal: >= 5x on CPU at K=8). Both paths
run with one intra-op thread, as tasks do inside a worker.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from proxy_tasks import get_task
from proxy_tasks.rules import AdamW


def bench(task_name: str, scale: int, k: int, repeats: int) -> tuple[float, float]:
    task = get_task(task_name, scale)
    data = task.load_data()
    task.run(AdamW(), [0], data)   # warm-up: first-call allocations and lazy imports
    batched, sequential = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        task.run(AdamW(), list(range(k)), data)
        batched.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for seed in range(k):
            task.run(AdamW(), [seed], data)
        sequential.append(time.perf_counter() - t0)
    return min(batched), min(sequential)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", nargs="+", default=["digits_mlp"])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    for name in args.task:
        b, s = bench(name, args.scale, args.k, args.repeats)
        print(f"{name} scale={args.scale} K={args.k}: batched {b:.2f}s, "
              f"sequential {s:.2f}s, ratio {s / b:.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of K seeds trained as one stacked model vs K sequential single-seed runs.

    .venv/bin/python -m scripts.bench.seeds --task digits_mlp --k 8 [--breakdown]

Prints seconds for both and the throughput ratio (goal: >= 5x on CPU at K=8). Both paths
run with one intra-op thread, as tasks do inside a worker. --breakdown also prints, for K=1
and K=K, the milliseconds per training step spent in the forward pass, the backward pass,
the update rule and drawing the batch: where stacking does and does not save time.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import torch

from optsearch.proxy_tasks import get_task
from optsearch.proxy_tasks.base import apply_rule, to_tensors
from optsearch.proxy_tasks.rules import AdamW


def bench(task_name: str, scale: int, k: int, repeats: int,
          device: str = "cpu") -> tuple[float, float]:
    """Best-of-`repeats` seconds: K seeds stacked, and K one-seed runs. Each run ends by
    copying its metrics to the host, so on CUDA the clock stops after the GPU's work."""
    task = get_task(task_name, scale)
    data = task.load_data()
    task.run(AdamW(), [0], data, device=device)   # warm-up: first-call allocations, imports
    batched, sequential = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        task.run(AdamW(), list(range(k)), data, device=device)
        batched.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for seed in range(k):
            task.run(AdamW(), [seed], data, device=device)
        sequential.append(time.perf_counter() - t0)
    return min(batched), min(sequential)


def breakdown(task_name: str, scale: int, k: int, steps: int = 300, skip: int = 20) -> dict:
    """ms per step in forward / backward / update / data (the training loop of
    proxy_tasks.base, timed piecewise; the first `skip` steps are warm-up)."""
    task = get_task(task_name, scale)
    data = to_tensors(task.load_data(), "cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        seeds, rule = list(range(k)), AdamW()
        params = task.init_params(seeds, "cpu")
        for p in params.values():
            p.requires_grad_(True)
        state = {n: tuple(torch.zeros_like(p) for _ in range(rule.n_slots))
                 for n, p in params.items()}
        next_batch, parts = task.batches(seeds, data, "cpu"), [0.0] * 4
        for step in range(steps):
            t = [time.perf_counter()]
            batch = next_batch()
            t.append(time.perf_counter())
            loss = task.loss(params, batch).sum()
            t.append(time.perf_counter())
            loss.backward()
            t.append(time.perf_counter())
            apply_rule(rule, params, state, 1.0)
            t.append(time.perf_counter())
            if step >= skip:
                for i, (a, b) in enumerate(itertools.pairwise(t)):
                    parts[i] += b - a
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)
    n = 1e-3 * (steps - skip)
    data_ms, fwd, bwd, upd = (x / n for x in parts)
    return {"fwd": fwd, "bwd": bwd, "update": upd, "data": data_ms}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", nargs="+", default=["digits_mlp"])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the batched-on-GPU check)")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time forward / backward / update / data per step")
    args = ap.parse_args(argv)
    for name in args.task:
        b, s = bench(name, args.scale, args.k, args.repeats, args.device)
        print(f"{name} scale={args.scale} K={args.k} {args.device}: batched {b:.2f}s, "
              f"sequential {s:.2f}s, ratio {s / b:.1f}x", flush=True)
        if args.breakdown:
            for k in (1, args.k):
                ms = breakdown(name, args.scale, k)
                print(f"  K={k}: " + ", ".join(f"{part} {v:.2f}" for part, v in ms.items())
                      + " ms per step", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

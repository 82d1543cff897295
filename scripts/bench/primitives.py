"""Benchmark the language core: compiled program step vs hand-written torch; parse/hash rate.

Usage: .venv/bin/python -m scripts.bench.primitives [--params 10_000_000] [--repeats 15]
Prints ratios measured in this one process (absolute times on a shared machine mean little).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from optsearch.primitives import parse
from optsearch.primitives.analysis import check
from optsearch.primitives.codegen import compile_program
from optsearch.primitives.hashing import fingerprint, structural_hash
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference, reference_text


def adamw_by_hand(w, g, state, lr):
    m, v = state
    m = torch.lerp(g, m, 0.9)
    v = torch.lerp(g * g, v, 0.999)
    update = m / (v.abs().sqrt() + 1e-8) + w * 0.01
    return update * (lr * 0.001), (m, v)


def lion_by_hand(w, g, state, lr):
    (m,) = state
    update = torch.sign(torch.lerp(g, m, 0.9)) + w * 0.1
    return update * (lr * 1e-4), (torch.lerp(g, m, 0.99),)


def _tensors(n_params: int):
    shapes = [(2048, 2048), (2048, 1024), (1024,), (4096, 512), (1024, 1536)]
    per_round = sum(torch.Size(s).numel() for s in shapes)
    return [torch.randn(s) for _ in range(max(1, n_params // per_round)) for s in shapes]


def _time_steps(rule, n_slots, weights, repeats):
    grads = [torch.randn_like(w) for w in weights]
    states = [tuple(torch.zeros_like(w) for _ in range(n_slots)) for w in weights]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for k, (w, g) in enumerate(zip(weights, grads)):
            update, states[k] = rule(w, g, states[k], 0.5)
            w.sub_(update)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_step(n_params: int, repeats: int) -> None:
    weights = _tensors(n_params)
    total = sum(w.numel() for w in weights)
    print(f"step time on {total / 1e6:.1f}M parameters, median of {repeats} "
          f"(torch threads: {torch.get_num_threads()})")
    for name, by_hand, slots in (("adamw", adamw_by_hand, 2), ("lion", lion_by_hand, 1)):
        compiled = compile_program(load_reference(name))
        t_hand = _time_steps(by_hand, slots, weights, repeats)
        t_comp = _time_steps(compiled, slots, weights, repeats)
        print(f"  {name:6s} compiled {t_comp * 1e3:7.1f} ms  hand-written {t_hand * 1e3:7.1f} ms  "
              f"ratio {t_comp / t_hand:.2f}")


def bench_parse(seconds: float = 3.0) -> None:
    texts = [reference_text(n) for n in REFERENCE_NAMES]
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for text in texts:
            program = parse(text)
            check(program)
            structural_hash(program)
            count += 1
    rate = count / (time.perf_counter() - start)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for text in texts:
            fingerprint(parse(text))
            count += 1
    print(f"parse+check+structural hash: {rate:,.0f} programs/s; "
          f"parse+fingerprint: {count / (time.perf_counter() - start):,.0f} programs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    bench_step(args.params, args.repeats)
    bench_parse()


if __name__ == "__main__":
    main()

"""Benchmark the exported Lion against published Lion implementations and AdamW (CPU).

    .venv/bin/python -m scripts.bench_export [--params-m 25] [--repeats 7] [--steps 3]

Step time of one optimizer step over a ~25M-parameter model (a few Linear-sized tensors with
fixed gradients): the exported Lion (foreach, single-tensor, and `torch.compile` of the step
with a 0-d tensor lr) vs `lion_pytorch.Lion` (its default per-parameter class and its foreach
class), `timm`'s Lion when importable, and `torch.optim.AdamW(foreach=True)`. Every repeat
times each optimizer in turn (interleaved, so machine drift hits all alike); the median per-step
time is reported, with its ratio to the fastest Lion peer. Also the optimizer-state memory
(bytes of state tensors) vs AdamW.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

import torch

from primitives.export import export_source
from primitives.reference import load_reference

LION_BINDINGS = {(0, 2): "beta1", (2, 2): "beta2", (3, 1): "weight_decay", (5, 1): "lr"}
HP = {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.1}


@dataclass(frozen=True)
class _Recognition:  # the shape of search.recognize.Recognition, for the reference Lion
    name: str
    hyperparameters: dict
    program: object
    bindings: dict


def lion_recognition() -> _Recognition:
    values = {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.1}
    return _Recognition("Lion", values, load_reference("lion"), LION_BINDINGS)


def exported_lion_class():
    """Write the exported file and import it as a real module (torch.compile needs one)."""
    source = export_source(load_reference("lion"), "Lion", lion_recognition())
    with tempfile.NamedTemporaryFile("w", suffix="_exported_lion.py", delete=False) as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location("exported_lion", fh.name)
    module = importlib.util.module_from_spec(spec)
    sys.modules["exported_lion"] = module
    spec.loader.exec_module(module)
    return module.Lion


def model_shapes(millions: float) -> list[tuple[int, ...]]:
    """Four square Linear weights and their biases, ~`millions` M parameters in all."""
    side = int((millions * 1e6 / 4) ** 0.5)
    return [(side, side), (side,)] * 4


def make_params(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-2
    return params


def candidates(shapes):
    """name -> (step callable, optimizer, is a Lion peer)."""
    Lion = exported_lion_class()
    out = {}
    opt = Lion(make_params(shapes), **HP, foreach=True)
    out["exported Lion (foreach)"] = (opt.step, opt, False)
    opt = Lion(make_params(shapes), **HP, foreach=False)
    out["exported Lion (single-tensor)"] = (opt.step, opt, False)
    opt = Lion(make_params(shapes), **{**HP, "lr": torch.tensor(HP["lr"])})
    out["exported Lion (torch.compile)"] = (torch.compile(opt.step), opt, False)
    try:
        import lion_pytorch
        from lion_pytorch.foreach import Lion as LionForeach
        opt = lion_pytorch.Lion(make_params(shapes), **HP)
        out["lion_pytorch.Lion"] = (opt.step, opt, True)
        opt = LionForeach(make_params(shapes), **HP)
        out["lion_pytorch.foreach.Lion"] = (opt.step, opt, True)
    except ImportError:
        print("note: lion_pytorch is not installed; skipped")
    try:
        from timm.optim import Lion as TimmLion
        opt = TimmLion(make_params(shapes), **HP)
        out["timm.optim.Lion"] = (opt.step, opt, True)
    except ImportError:
        print("note: timm is not installed; its Lion is skipped")
    opt = torch.optim.AdamW(make_params(shapes), lr=1e-3, weight_decay=0.1, foreach=True)
    out["torch.optim.AdamW (foreach)"] = (opt.step, opt, False)
    return out


def time_steps(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def state_bytes(opt) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values()
               for v in s.values() if torch.is_tensor(v))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params-m", type=float, default=25.0, help="model size, millions")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    args = ap.parse_args(argv)
    shapes = model_shapes(args.params_m)
    n_params = sum(torch.Size(s).numel() for s in shapes)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{n_params / 1e6:.1f}M parameters in {len(shapes)} tensors")
    cands = candidates(shapes)
    for name, (step, _, _) in cands.items():  # warm-up: state creation, compilation
        t0 = time.perf_counter()
        step(), step()
        print(f"warm-up {name}: {time.perf_counter() - t0:.1f} s")
    times = {name: [] for name in cands}
    for _ in range(args.repeats):
        for name, (step, _, _) in cands.items():
            times[name].append(time_steps(step, args.steps))
    report(cands, {k: statistics.median(v) for k, v in times.items()})
    memory(shapes, cands)
    return 0


def report(cands, median: dict) -> None:
    peers = [n for n, (_, _, peer) in cands.items() if peer]
    base = min(median[n] for n in peers) if peers else min(median.values())
    print(f"\n{'optimizer':34s} {'ms/step':>9s} {'x fastest Lion peer':>20s}")
    for name, t in median.items():
        print(f"{name:34s} {t * 1e3:9.1f} {t / base:20.2f}")


def memory(shapes, cands) -> None:
    Lion = exported_lion_class()
    bf16 = Lion(make_params(shapes), **HP, state_dtype=torch.bfloat16)
    bf16.step()
    adamw = state_bytes(cands["torch.optim.AdamW (foreach)"][1])
    rows = {"exported Lion": state_bytes(cands["exported Lion (foreach)"][1]),
            "exported Lion, state_dtype=bf16": state_bytes(bf16), "AdamW": adamw}
    print(f"\n{'optimizer state':34s} {'MB':>9s} {'x AdamW':>20s}")
    for name, b in rows.items():
        print(f"{name:34s} {b / 2**20:9.1f} {b / adamw:20.2f}")


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the exported Lion against published Lion implementations and AdamW (CPU or CUDA).

    .venv/bin/python -m scripts.bench.export [--params-m 25] [--repeats 7] [--steps 3]
                                             [--timm-path DIR] [--device cuda]

Step time of one optimizer step over a ~25M-parameter model (a few Linear-sized tensors with
fixed gradients): the exported Lion (foreach, single-tensor, and `torch.compile` of the step
with a 0-d tensor lr) vs `lion_pytorch.Lion` (its default per-parameter class and its foreach
class), timm's Lion (foreach and single-tensor) and `torch.optim.AdamW(foreach=True)`. Every
repeat times each optimizer in turn (interleaved, so machine drift hits all alike); the median
per-step time is reported, with its ratio to the fastest Lion peer. Before timing, every Lion
is checked to have computed the same parameters as the exported one (same start, same
gradients, same steps): the timed work is the same rule.

Memory: the optimizer state (bytes of state tensors) and the peak during a step (state plus
the step's temporaries, from the profiler's allocation events; on CUDA from the allocator's
peak), vs AdamW.

timm. `import timm.optim` runs timm's package `__init__`, which imports its models and with
them torchvision; torchvision's wheels pin a torch other than the project's (torch==2.13.0+cpu),
so timm is not a project dependency. Its `timm/optim/lion.py` needs only torch and two sibling
modules (`_helpers.py`, `_types.py`, both torch-only), so when the import fails this script
loads those three files on their own, as a stand-in package, from a timm found on sys.path,
under `--timm-path DIR` or `$OPTSEARCH_TIMM_PATH` (a directory holding `timm/`), e.g. after
`pip install --no-deps --target /tmp/timm_site timm`.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import statistics
import sys
import tempfile
import time
import types
from dataclasses import dataclass

import torch

from optsearch.primitives.export import export_source
from optsearch.primitives.reference import load_reference

LION_BINDINGS = {(0, 2): "beta1", (2, 2): "beta2", (3, 1): "weight_decay", (5, 1): "lr"}
HP = {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.1}
DEVICE = "cpu"   # --device; parameters are drawn on the CPU (same values) and moved there
REFERENCE = "exported Lion (single-tensor)"  # the others are compared with it before timing


@dataclass(frozen=True)
class _Recognition:  # the shape of search.recognize.Recognition, for the reference Lion
    name: str
    hyperparameters: dict
    program: object
    bindings: dict


@dataclass
class Candidate:
    step: object  # callable: one optimizer step
    opt: torch.optim.Optimizer
    params: list
    lion_peer: bool  # a published Lion: the ratios are to the fastest of these
    is_lion: bool = True


def lion_recognition() -> _Recognition:
    values = {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.1}
    return _Recognition("Lion", values, load_reference("lion"), LION_BINDINGS)


def exported_lion_class(chunked: bool = True):
    """Write the exported file and import it as a real module (torch.compile needs one).
    chunked=False: a second copy with cache-sized chunking switched off, to measure it."""
    source = export_source(load_reference("lion"), "Lion", lion_recognition())
    name = "exported_lion" if chunked else "exported_lion_unchunked"
    with tempfile.NamedTemporaryFile("w", suffix=f"_{name}.py", delete=False) as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location(name, fh.name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    module._CHUNKABLE = module._CHUNKABLE and chunked
    return module.Lion


# ----------------------------------------------------------------------------- timm

TIMM_FILES = ("_types.py", "_helpers.py", "lion.py")
STANDIN = "_timm_optim_standalone"


def timm_lion_class(extra_paths=()) -> tuple[object, str]:
    """(timm's Lion class, how it was loaded), or (None, why not)."""
    try:
        from timm.optim import Lion
        return Lion, "import timm.optim"
    except ImportError as exc:
        why = f"import timm.optim failed ({exc})"
    optim_dir = _find_timm_optim(extra_paths)
    if optim_dir is None:
        return None, f"{why}; no timm/optim/lion.py on sys.path or --timm-path"
    try:
        return _load_standalone(optim_dir).Lion, f"standalone files from {optim_dir}"
    except Exception as exc:  # noqa: BLE001 -- a newer timm may need more: report, skip
        return None, f"{why}; loading {optim_dir}/lion.py alone failed: {exc!r}"


def _find_timm_optim(extra_paths) -> str | None:
    """timm's optim directory, located without executing timm's package `__init__`."""
    env = os.environ.get("OPTSEARCH_TIMM_PATH")
    paths = [*extra_paths, *([env] if env else []), *sys.path]
    spec = importlib.machinery.PathFinder.find_spec("timm", paths)
    for root in (spec.submodule_search_locations or []) if spec else []:
        optim = os.path.join(root, "optim")
        if all(os.path.isfile(os.path.join(optim, f)) for f in TIMM_FILES):
            return optim
    return None


def _load_standalone(optim_dir: str):
    """Import timm/optim/lion.py as `_timm_optim_standalone.lion`: a package object whose
    __path__ is timm's optim directory, so lion.py's relative imports (`from ._helpers import
    ...`) find the sibling files, and timm's own `__init__` files never run."""
    if STANDIN not in sys.modules:
        package = types.ModuleType(STANDIN)
        package.__path__ = [optim_dir]
        sys.modules[STANDIN] = package
    name = f"{STANDIN}.lion"
    spec = importlib.util.spec_from_file_location(name, os.path.join(optim_dir, "lion.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- candidates

def model_shapes(millions: float) -> list[tuple[int, ...]]:
    """Four square Linear weights and their biases, ~`millions` M parameters in all."""
    side = int((millions * 1e6 / 4) ** 0.5)
    return [(side, side), (side,)] * 4


def make_params(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen).to(DEVICE).requires_grad_() for s in shapes]
    for p in params:
        p.grad = (torch.randn(p.shape, generator=gen) * 1e-2).to(DEVICE)
    return params


def candidates(shapes, timm_paths=()) -> dict[str, Candidate]:
    Lion = exported_lion_class()
    out = {}

    def add(name, cls, peer, compiled=False, is_lion=True, **kw):
        params = make_params(shapes)
        opt = cls(params, **kw)
        step = torch.compile(opt.step) if compiled else opt.step
        out[name] = Candidate(step, opt, params, peer, is_lion)

    add("exported Lion (foreach)", Lion, False, **HP, foreach=True)
    add(REFERENCE, Lion, False, **HP, foreach=False)
    add("exported Lion (single, unchunked)", exported_lion_class(chunked=False), False, **HP,
        foreach=False)
    add("exported Lion (torch.compile)", Lion, False, compiled=True,
        **{**HP, "lr": torch.tensor(HP["lr"], device=DEVICE)})
    try:
        import lion_pytorch
        from lion_pytorch.foreach import Lion as LionForeach
        add("lion_pytorch.Lion", lion_pytorch.Lion, True, **HP)
        add("lion_pytorch.foreach.Lion", LionForeach, True, **HP)
    except ImportError:
        print("note: lion_pytorch is not installed; skipped")
    TimmLion, how = timm_lion_class(timm_paths)
    if TimmLion is None:
        print(f"note: timm's Lion skipped: {how}")
    else:
        print(f"timm's Lion: {how}")
        add("timm Lion (foreach)", TimmLion, True, **HP, foreach=True)
        add("timm Lion (single-tensor)", TimmLion, True, **HP, foreach=False)
    add("torch.optim.AdamW (foreach)", torch.optim.AdamW, False, is_lion=False,
        lr=1e-3, weight_decay=0.1, foreach=True)
    return out


def agreement(cands: dict[str, Candidate]) -> None:
    """After the same warm-up steps every Lion holds the same parameters as the reference,
    up to rare sign flips where the interpolation is ~0 (each moves an element by 2 lr)."""
    ref = cands[REFERENCE].params
    for name, c in cands.items():
        if not c.is_lion or name == REFERENCE:
            continue
        diffs = [(p - q).detach().abs() for p, q in zip(c.params, ref)]
        off = sum(int((d > 1e-6).sum()) for d in diffs) / sum(d.numel() for d in diffs)
        worst = max(float(d.max()) for d in diffs)
        if off > 1e-3 or worst > 4 * HP["lr"] + 1e-6:
            raise SystemExit(f"{name} disagrees with {REFERENCE}: {off:.2%} of elements differ, "
                             f"by up to {worst:.3g}")
        print(f"same parameters as {REFERENCE}: {name} ({off:.4%} elements differ by a flip)")


# ----------------------------------------------------------------------------- measuring

def sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()   # kernels run asynchronously: time the work, not the launch


def time_steps(step, n: int) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return (time.perf_counter() - start) / n


def state_bytes(opt) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values()
               for v in s.values() if torch.is_tensor(v))


def step_transient_peak(step) -> int | None:
    """Peak bytes allocated and not yet freed during one step (its temporaries), from the
    profiler's allocation events; None if this torch's profiler does not expose them."""
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    try:
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
        events.sort(key=lambda e: e.start_ns())
        current = peak = 0
        for e in events:
            current += e.nbytes()
            peak = max(peak, current)
        return peak
    except AttributeError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params-m", type=float, default=25.0, help="model size, millions")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    ap.add_argument("--timm-path", action="append", default=[], metavar="DIR",
                    help="directory holding timm/ (when `import timm.optim` fails)")
    ap.add_argument("--chunk", type=int, default=None,
                    help="elements per chunk of the exported single-tensor path (default: "
                         "the exported file's _CHUNK)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    shapes = model_shapes(args.params_m)
    n_params = sum(torch.Size(s).numel() for s in shapes)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{n_params / 1e6:.1f}M parameters in {len(shapes)} tensors")
    print(f"device {DEVICE}; exported Lion's default (foreach=None) on CPU: the single-tensor "
          "path; foreach is the default on CUDA/XPU")
    cands = candidates(shapes, args.timm_path)
    if args.chunk:
        sys.modules["exported_lion"]._CHUNK = args.chunk
    print(f"exported single-tensor path: chunks of {sys.modules['exported_lion']._CHUNK} elements")
    for name, c in cands.items():  # warm-up: state creation, compilation
        t0 = time.perf_counter()
        c.step(), c.step()
        print(f"warm-up {name}: {time.perf_counter() - t0:.1f} s")
    agreement(cands)
    times = {name: [] for name in cands}
    for _ in range(args.repeats):
        for name, c in cands.items():
            times[name].append(time_steps(c.step, args.steps))
    report(cands, {k: statistics.median(v) for k, v in times.items()})
    memory(shapes, cands)
    return 0


def report(cands: dict[str, Candidate], median: dict) -> None:
    peers = [n for n, c in cands.items() if c.lion_peer]
    base = min(median[n] for n in peers) if peers else min(median.values())
    fastest = min(peers, key=median.get) if peers else "-"
    print(f"\n{'optimizer':36s} {'ms/step':>9s} {'x fastest Lion peer':>20s}"
          f"   (fastest peer: {fastest})")
    for name, t in median.items():
        print(f"{name:36s} {t * 1e3:9.1f} {t / base:20.2f}")


def memory(shapes, cands: dict[str, Candidate]) -> None:
    Lion = exported_lion_class()
    bf16 = Lion(make_params(shapes), **HP, state_dtype=torch.bfloat16)
    bf16.step()
    rows = {name: (c.opt, c.step) for name, c in cands.items()}
    rows["exported Lion, state_dtype=bf16 (single-tensor)"] = (bf16, bf16.step)
    adamw_opt, adamw_step = rows["torch.optim.AdamW (foreach)"]
    adamw_state = state_bytes(adamw_opt)
    adamw_peak = adamw_state + (step_transient_peak(adamw_step) or 0)
    print(f"\n{'optimizer':48s} {'state MB':>9s} {'x AdamW':>8s} {'peak MB':>9s} {'x AdamW':>8s}")
    for name, (opt, step) in rows.items():
        state = state_bytes(opt)
        transient = step_transient_peak(step)
        peak = "n/a" if transient is None else f"{(state + transient) / 2**20:9.1f}"
        ratio = "" if transient is None else f"{(state + transient) / adamw_peak:8.2f}"
        print(f"{name:48s} {state / 2**20:9.1f} {state / adamw_state:8.2f} {peak:>9s} {ratio:>8s}")


if __name__ == "__main__":
    sys.exit(main())

"""What target mode imitates: a program (file or shipped reference) or a torch optimizer class.

    target = resolve_target("lion" | "path/to/program.py" | "torch.optim.NAdam" | "pkg.mod:Class")
    step = target.stepper(w0)          # fresh optimizer state for weights w0 [K, N] (float64)
    update = step(w, g, lr)            # w <- w - update, one call per training step

A program file is parsed and checked, never executed. A class is imported by its dotted name
(importing runs that module's code, so only an explicit importable name is accepted, never a
file path) and treated as a black box: it is constructed with its default hyperparameters,
given one parameter per seed, and only the change of those parameters is observed. The
schedule value `lr` multiplies the class's default learning rate, as a program's `lr` input
multiplies its lr constant.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re

import torch

from optsearch.primitives.codegen import compile_program
from optsearch.primitives.files import read_program_file
from optsearch.primitives.printer import format_program
from optsearch.primitives.program import Program
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference

# "torch.optim.NAdam" or "package.module:Class": dotted identifiers only (no paths, no ".py")
_CLASS_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*|\.[A-Za-z_]\w*)$")


class TargetError(ValueError):
    """A target that cannot be used (unknown name, unimportable class, a class that fails)."""


class ProgramTarget:
    """A program: its compiled update rule over stacked [K, N] weights."""

    def __init__(self, program: Program, label: str):
        self.program, self.label = program, label
        self.version = hashlib.sha256(format_program(program).encode()).hexdigest()[:16]

    def stepper(self, w0: torch.Tensor):
        rule = compile_program(self.program, batch_dims=1)
        state = [tuple(torch.zeros_like(w0) for _ in range(rule.n_slots))]

        def step(w, g, lr):
            update, state[0] = rule(w, g, state[0], lr)
            return update.expand_as(w)
        return step


class TorchTarget:
    """A torch.optim.Optimizer class, observed through its parameter updates only."""

    def __init__(self, cls: type, label: str):
        self.cls, self.label = cls, label
        # The class's behaviour can change with torch: the version keys cached fitness.
        self.version = f"{cls.__module__}.{cls.__qualname__}@torch{torch.__version__}"

    def stepper(self, w0: torch.Tensor):
        params = [torch.nn.Parameter(row.clone()) for row in w0]  # one parameter per seed
        try:
            opt = self.cls(params)
        except Exception as exc:  # noqa: BLE001 -- any failure is the user's target's
            raise TargetError(f"{self.label}: cannot construct it with default arguments: "
                              f"{type(exc).__name__}: {exc}") from None
        base_lrs = [float(group["lr"]) for group in opt.param_groups]

        def step(w, g, lr):
            with torch.no_grad():
                for p, w_k, g_k in zip(params, w, g):
                    p.copy_(w_k)
                    p.grad = g_k.clone()
                for group, base in zip(opt.param_groups, base_lrs):
                    group["lr"] = base * float(lr)
                try:
                    opt.step()
                except Exception as exc:  # noqa: BLE001
                    raise TargetError(f"{self.label}: step() failed: "
                                      f"{type(exc).__name__}: {exc}") from None
                return w - torch.stack([p.detach() for p in params])
        return step


def resolve_target(spec: str):
    """A ProgramTarget or TorchTarget for `spec` (see the module docstring).

    Raises ProgramError for an invalid program file, TargetError for anything else."""
    if os.path.isfile(spec):
        return ProgramTarget(_read_program(spec), spec)
    if spec in REFERENCE_NAMES:
        return ProgramTarget(load_reference(spec), spec)
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        raise TargetError(f"{spec}: no such program file")
    if _CLASS_SPEC.match(spec):
        return TorchTarget(import_optimizer_class(spec), spec)
    raise TargetError(f"unknown target {spec!r}: not a program file, a shipped reference "
                      f"({', '.join(REFERENCE_NAMES)}) or an optimizer class "
                      f"(torch.optim.NAdam, package.module:Class)")


def _read_program(path: str) -> Program:
    try:
        return read_program_file(path)
    except OSError as exc:
        raise TargetError(f"{path}: cannot read: {exc.strerror}") from None


def import_optimizer_class(spec: str) -> type:
    """`package.module:Class` or `package.module.Class` -> a torch.optim.Optimizer subclass."""
    module_name, _, class_name = spec.rpartition(":") if ":" in spec else spec.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 -- ImportError, or the module's own failure
        raise TargetError(f"{spec}: cannot import {module_name}: "
                          f"{type(exc).__name__}: {exc}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise TargetError(f"{spec}: {module_name} has no torch.optim.Optimizer subclass "
                          f"named {class_name}")
    return cls

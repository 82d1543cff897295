"""The cheap rung of a two-fidelity evaluation: every task of a suite at a fraction of its cost.

Two kinds (`rung_suite(..., kind=)`): "compressed", every task with its steps cut to
`fraction` (below), and "tail", only the last `fraction` of every task's steps, trained from
the checkpoint of an AdamW run (proxy_tasks.tail; `TailTask` here).

A rung task is the full task with `steps` scaled by `fraction` and nothing else changed: the
same model, data, seeds, batch size and divergence checks, and the same warmup-cosine
schedule compressed to the shorter horizon. Why a compressed schedule rather than the first
steps of the full one: a prefix of the full run is still at its peak step size, so it ranks
rules by how they behave before any annealing, which is not what the full run scores; the
compressed run ends annealed, like the full one. It cannot be continued into the full run,
which is why a program that clears the hurdle is trained again from scratch (search.hurdles).

Steps, not seeds, are cut: the seeds are stacked into one batched training run, so a quarter
of the seeds saves little time (measured: 2 seeds cost 66-96% of 4) while a quarter of the
steps saves three quarters, and all seeds keep the paired-seed comparison with AdamW.

A rung score is normalised against AdamW run at the rung's own length -- `rung_suite` has
its own version, so the AdamW baseline and cached fitness of the rung are kept apart from the
full suite's (evaluator.baseline caches one baseline per suite version).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

from optsearch.evaluator.baseline import BASELINE_PROGRAM
from optsearch.evaluator.suites import Suite, resolve_suite
from optsearch.evaluator.train import compile_checked
from optsearch.primitives.reference import reference_text
from optsearch.proxy_tasks.tail import Checkpoint, make_checkpoint

RUNG_KINDS = ("compressed", "tail")


def rung_steps(steps: int, fraction: float) -> int:
    """A task's step count on the rung: at least one step."""
    return max(1, round(steps * fraction))


def rung_suite(suite, fraction: float, kind: str = "compressed") -> Suite:
    """The suite's rung, under the same task keys: its tasks at `fraction` of their steps
    ("compressed") or their last `fraction` of steps from AdamW's checkpoint ("tail")."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"rung fraction must be in (0, 1], got {fraction!r}")
    if kind not in RUNG_KINDS:
        raise ValueError(f"rung kind must be one of {', '.join(RUNG_KINDS)}, got {kind!r}")
    suite = resolve_suite(suite)
    return compressed_suite(suite, fraction) if kind == "compressed" else \
        tail_suite(suite, fraction)


def compressed_suite(suite: Suite, fraction: float) -> Suite:
    """Every task at `fraction` of its steps, its schedule compressed to them."""
    tasks = {}
    for key, task in suite.tasks.items():
        config = dataclasses.replace(task.config, steps=rung_steps(task.config.steps, fraction))
        tasks[key] = type(task)(config, task.scale)
    # The data is the full suite's (no task's data depends on its step count), so the
    # version is derived from the full one instead of re-hashing every dataset.
    steps = ",".join(f"{key}={task.config.steps}" for key, task in tasks.items())
    version = hashlib.sha256(f"{suite.version}/rung/{steps}".encode()).hexdigest()[:16]
    return Suite(f"{suite.name}@rung{fraction:g}", tasks, version)


def rung_time_limit(time_limit_s: float | None, fraction: float) -> float | None:
    """The rung's share of the evaluation time limit: a program too slow per step for the
    full run is as slow on the rung, and is stopped there after `fraction` of the time."""
    if time_limit_s is None:
        return None
    return max(1.0, time_limit_s * fraction) if math.isfinite(time_limit_s) else time_limit_s


def tail_suite(suite: Suite, fraction: float, history: float = 1.0) -> Suite:
    """Every task's last `fraction` of steps, from the AdamW baseline's checkpoint, the rule's
    state warmed on `history` reference steps per tail step (at most all steps before it)."""
    reference = reference_text(BASELINE_PROGRAM)
    tasks = {key: TailTask(task, fraction, reference, history)
             for key, task in suite.tasks.items()}
    tails = ",".join(f"{key}={task.tail}/{task.history}" for key, task in tasks.items())
    digest = hashlib.sha256(reference.encode()).hexdigest()[:16]
    version = hashlib.sha256(f"{suite.version}/tail/{tails}/{digest}".encode()).hexdigest()[:16]
    name = f"{suite.name}@tail{fraction:g}" + (f"h{history:g}" if history != 1.0 else "")
    return Suite(name, tasks, version)


class TailTask:
    """A task trained only over its last `fraction` of steps, from the checkpoint of the
    reference program (program text, compiled in the worker), the rule's state warmed on
    `history` reference steps per tail step (at most every step before the tail). Keeps the
    wrapped task's name, config, data and metric, so evaluation scores it like any task
    (against AdamW's own tail)."""

    def __init__(self, task, fraction: float, reference: str, history: float = 1.0):
        self.task, self.fraction, self.reference = task, fraction, reference
        steps = task.config.steps
        self.tail = max(1, min(steps - 1, round(steps * fraction)))
        self.history = min(steps - self.tail, round(self.tail * min(history, steps)))
        self._checkpoints: dict = {}

    name = property(lambda self: self.task.name)
    scale = property(lambda self: self.task.scale)
    config = property(lambda self: self.task.config)
    lower_is_better = property(lambda self: self.task.lower_is_better)

    def load_data(self):
        return self.task.load_data()

    def data_hash(self, data) -> str:
        return self.task.data_hash(data)

    def repeat_batch(self, batch, groups: int):
        return self.task.repeat_batch(batch, groups)

    def fingerprint(self) -> dict:
        reference = hashlib.sha256(self.reference.encode()).hexdigest()[:16]
        return self.task.fingerprint() | {"tail": self.tail, "history": self.history,
                                          "reference": reference}

    def run(self, rule, seeds, data, device="cpu", time_limit_s=None, observe=None,
            groups: int = 1):
        seeds = list(seeds)
        own = tuple(seeds[:len(seeds) // groups])
        checkpoint = self.checkpoint(own, data, device)
        return self.task.run(rule, seeds, data, device, time_limit_s, observe, groups,
                             start=checkpoint)

    def checkpoint(self, seeds: tuple, data, device) -> Checkpoint:
        """The reference's checkpoint for these seeds, made on first use in this process."""
        key = (seeds, str(device))
        if key not in self._checkpoints:
            rule = compile_checked(self.reference)
            self._checkpoints[key] = make_checkpoint(self.task, rule, seeds, data, device,
                                                     self.tail, self.history)
        return self._checkpoints[key]

    def __getstate__(self):
        # Checkpoints are big and cheap to remake: every worker makes its own.
        return {**self.__dict__, "_checkpoints": {}}

    def __repr__(self) -> str:
        return f"TailTask({self.task.name!r}, fraction={self.fraction:g})"

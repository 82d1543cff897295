"""The cheap rung of a two-fidelity evaluation: every task of a suite at a fraction of its steps.

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

from optsearch.evaluator.suites import Suite, resolve_suite


def rung_steps(steps: int, fraction: float) -> int:
    """A task's step count on the rung: at least one step."""
    return max(1, round(steps * fraction))


def rung_suite(suite, fraction: float) -> Suite:
    """The suite's tasks at `fraction` of their steps, under the same task keys."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"rung fraction must be in (0, 1], got {fraction!r}")
    suite = resolve_suite(suite)
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

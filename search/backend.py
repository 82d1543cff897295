"""How the search gets its evaluations: the backend named by the config, and the version
that keys cached fitness."""

from __future__ import annotations

import os

from optsearch import evaluator
from optsearch.evaluator.fake_backend import FakeBackend
from optsearch.search.config import EvaluationConfig


class BackendUnavailable(RuntimeError):
    pass


def worker_count(ev: EvaluationConfig) -> int:
    """evaluation.workers, where 0 means one worker per CPU core."""
    return ev.workers or os.cpu_count() or 1


def make_backend(ev: EvaluationConfig):
    """The evaluator's backend named by the config ("fake" is the test backend)."""
    if ev.backend == "fake":
        return FakeBackend(workers=worker_count(ev), delay_s=ev.fake_delay_s)
    try:
        return evaluator.make_backend(ev.backend, workers=worker_count(ev),
                                      address=ev.address or None, suite=ev.suite,
                                      seeds=tuple(range(ev.seeds)))
    except (KeyError, ValueError) as exc:  # an unknown suite or backend kind: user input
        raise BackendUnavailable(f"cannot start the {ev.backend} backend: {exc}") from None


def cache_version(backend, ev: EvaluationConfig) -> str:
    """What a cached fitness depends on besides the program: suite version and seeds."""
    seeds = tuple(range(ev.seeds))
    suite = getattr(backend, "suite", None)
    if suite is not None and hasattr(suite, "version"):
        return evaluator.evaluation_version(suite, seeds)
    version = getattr(backend, "suite_version", None) or ev.suite
    return f"{version}/seeds={','.join(map(str, seeds))}"


def open_shared_cache(ev: EvaluationConfig):
    """The evaluator's cross-run FitnessCache, when the config names one."""
    if not ev.shared_cache:
        return None
    return evaluator.FitnessCache(ev.shared_cache)


def cacheable(fitness, status: str) -> bool:
    # Only deterministic outcomes: a timeout or a worker crash says nothing about the program.
    return bool(getattr(fitness, "cacheable", status in ("ok", "invalid", "diverged")))

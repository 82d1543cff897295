"""How the search gets its evaluations: the backend named by the config, and the version
that keys cached fitness. The evaluator is imported lazily, so the search machinery (and its
tests, with the fake backend) works in a checkout without it.
"""

from __future__ import annotations

import importlib
import os

from search.config import EvaluationConfig
from search.fake_backend import FakeBackend


class BackendUnavailable(RuntimeError):
    pass


def worker_count(ev: EvaluationConfig) -> int:
    """evaluation.workers, where 0 means one worker per CPU core."""
    return ev.workers or os.cpu_count() or 1


def make_backend(ev: EvaluationConfig):
    """The evaluator's backend named by the config ("fake" is the test backend)."""
    if ev.backend == "fake":
        return FakeBackend(workers=worker_count(ev), delay_s=ev.fake_delay_s)
    for module_name in ("evaluator.backends", "evaluator"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if not hasattr(module, "make_backend"):
            continue
        try:
            return module.make_backend(ev.backend, workers=worker_count(ev),
                                       address=ev.address or None, suite=ev.suite, seeds=tuple(range(ev.seeds)))
        except (KeyError, ValueError) as exc:  # an unknown suite or backend kind: user input
            raise BackendUnavailable(f"cannot start the {ev.backend} backend: {exc}") from None
    raise BackendUnavailable("the evaluator (evaluator.make_backend) is not available here")


def cache_version(backend, ev: EvaluationConfig) -> str:
    """What a cached fitness depends on besides the program: suite version and seeds."""
    seeds = tuple(range(ev.seeds))
    suite = getattr(backend, "suite", None)
    if suite is not None and hasattr(suite, "version"):
        return importlib.import_module("evaluator").evaluation_version(suite, seeds)
    version = getattr(backend, "suite_version", None) or ev.suite
    return f"{version}/seeds={','.join(map(str, seeds))}"


def open_shared_cache(ev: EvaluationConfig):
    """The evaluator's cross-run FitnessCache, when the config names one."""
    if not ev.shared_cache:
        return None
    return importlib.import_module("evaluator").FitnessCache(ev.shared_cache)


def cacheable(fitness, status: str) -> bool:
    # Only deterministic outcomes: a timeout or a worker crash says nothing about the program.
    return bool(getattr(fitness, "cacheable", status in ("ok", "invalid", "diverged")))

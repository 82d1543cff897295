"""Scores programs: evaluate(program, suite, seeds) -> Fitness; cache; serial and Ray backends.

Ray is imported only by evaluator.ray_backend, and only when a "ray" backend is made.
"""

from optsearch.evaluator.backends import Backend, BackendUnavailable, make_backend
from optsearch.evaluator.cache import FitnessCache, program_keys
from optsearch.evaluator.evaluate import DEFAULT_SEEDS, evaluate
from optsearch.evaluator.fitness import FAILURE_FITNESS, STATUSES, Fitness, TaskFitness
from optsearch.evaluator.suites import Suite, evaluation_version, resolve_suite

__all__ = [
    "DEFAULT_SEEDS",
    "FAILURE_FITNESS",
    "STATUSES",
    "Backend",
    "BackendUnavailable",
    "Fitness",
    "FitnessCache",
    "Suite",
    "TaskFitness",
    "evaluate",
    "evaluation_version",
    "make_backend",
    "program_keys",
    "resolve_suite",
]

"""Scores programs: evaluate(program, suite, seeds) -> Fitness; cache; serial and Ray backends.

Ray is imported only by evaluator.ray_backend, and only when a "ray" backend is made.
"""

from optsearch.evaluator.backends import Backend, make_backend
from optsearch.evaluator.cache import FitnessCache, program_keys
from optsearch.evaluator.evaluate import DEFAULT_SEEDS, evaluate
from optsearch.evaluator.fitness import FAILURE_FITNESS, STATUSES, Fitness, TaskFitness
from optsearch.evaluator.suites import Suite, evaluation_version, resolve_suite


def suite_version(suite) -> str:
    """Version of a suite (name or Suite): keys cached fitness together with the seeds."""
    return resolve_suite(suite).version

__all__ = [
    "DEFAULT_SEEDS",
    "FAILURE_FITNESS",
    "STATUSES",
    "Backend",
    "Fitness",
    "FitnessCache",
    "Suite",
    "TaskFitness",
    "evaluate",
    "evaluation_version",
    "make_backend",
    "program_keys",
    "resolve_suite",
    "suite_version",
]

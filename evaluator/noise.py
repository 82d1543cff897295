"""Seed noise: the standard error of a mean over seeds, the one estimate every comparison of
fitness (funnel, simplifier, main job, research scripts) uses."""

from __future__ import annotations

import math
import statistics


def standard_error(values) -> float:
    """Standard error of the mean of `values`: sample standard deviation / sqrt(n).

    NaN when it cannot be estimated: fewer than two values, or a value that is not finite
    (a diverged seed's metric)."""
    values = [float(v) for v in values]
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        return math.nan
    return statistics.stdev(values) / math.sqrt(len(values))


def mean_stderr(fitness) -> tuple[float, float]:
    """A Fitness's aggregate and the standard error of its per-seed aggregates."""
    return fitness.aggregate, standard_error(fitness.seed_aggregates())

"""Warm start with a learning-rate sweep: the initial program at several step sizes.

The paper warm-starts the search from AdamW. On a cheap proxy suite the step size matters
far more than the update's form (default suite, 4 seeds: AdamW's fitness goes from 1.0 at its
lr constant 1e-3 to 5.7 at 1.5e-2, while Lion and signum at their best lr are only 1.2-1.6x
tuned AdamW), so a population of untuned AdamW spends its budget on step-size hacks (deleting
the lr constant, clipping) before form matters. Evaluating the initial program at a few lr
factors and filling the population with the best one lets selection act on form from the
first generation. The factors are `search.init_lr_factors`; "1" is the paper's warm start.
"""

from __future__ import annotations

import math

from optsearch.evaluator.lr_sweep import with_lr_factor
from optsearch.primitives.program import Program


def parse_factors(text: str) -> tuple[float, ...]:
    """"0.5,1,2" -> (0.5, 1.0, 2.0); positive finite numbers, no duplicates."""
    try:
        factors = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"not a comma-separated list of numbers: {text!r}") from None
    if not all(math.isfinite(f) and f > 0 for f in factors):
        raise ValueError(f"factors must be positive and finite: {text!r}")
    if len(set(factors)) != len(factors):
        raise ValueError(f"duplicate factors: {text!r}")
    return factors


def lr_sweep(program: Program, factors: tuple[float, ...]) -> list[Program]:
    """The initial programs, one per factor, in the given order."""
    return [with_lr_factor(program, f) for f in factors]

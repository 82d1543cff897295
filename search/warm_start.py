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

from optsearch.primitives.program import Program, Statement


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


def _lr_constant_statement(program: Program) -> int | None:
    """Index of the first `x = lr * c` (or `c * lr`) that reads the lr input itself."""
    for i, stmt in enumerate(program.statements):
        if stmt.op == "mul" and program.lr in stmt.args:
            other = stmt.args[1] if stmt.args[0] == program.lr else stmt.args[0]
            if not isinstance(other, str):
                return i
        if stmt.target == program.lr:
            return None  # lr is overwritten before any constant scales it
    return None


def with_lr_factor(program: Program, factor: float) -> Program:
    """The program with its step size times `factor`.

    Scales the constant of `lr = lr * c` when there is one (AdamW, Lion: the program keeps its
    form), else multiplies the returned update by the factor in a last statement."""
    if factor == 1.0:
        return program
    statements = list(program.statements)
    index = _lr_constant_statement(program)
    if index is not None:
        stmt = statements[index]
        # 12 significant digits: 0.001 * 15 is stored as 0.015, not 0.015000000000000001
        args = tuple(a if isinstance(a, str) else float(f"{a * factor:.12g}")
                     for a in stmt.args)
        statements[index] = Statement(stmt.target, stmt.op, args)
    else:
        update = program.returns[0]
        statements.append(Statement(update, "mul", (update, float(factor))))
    return program.replace_statements(statements)


def lr_sweep(program: Program, factors: tuple[float, ...]) -> list[Program]:
    """The initial programs, one per factor, in the given order."""
    return [with_lr_factor(program, f) for f in factors]

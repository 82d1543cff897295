"""Constant fitting: a local optimiser over the literal constants of a program.

The modify mutation moves a constant by a random factor (`scale`: 2^N(0,1); `ema`: the same on
1 - c). That finds an lr's order of magnitude or an EMA's memory, but landing within a few
percent of a target's constants takes a long run of lucky draws, each one a full evaluation:
in target mode the Lion-form programs of a search had the right form with β1 and the lr still
drifting when the run ended (docs/research/2026-12-03-recovery.md). Symbolic regression
polishes the constants of its best expressions with a local optimiser for the same reason
(PySR: BFGS on the loss). Here the fitness is not differentiable in a constant that sits under
a `sign` -- it changes one element's flip at a time -- so the optimiser is derivative-free:
Nelder-Mead (scipy.optimize.minimize), on the live constants of the program, in coordinates
where a multiplicative error is a fixed distance:

    c in [0.5, 1):  x = log(1 - c)    an interp weight: its memory, 1 / (1 - c) steps
    other c != 0:   x = log|c|        an lr, a weight decay, a scale (the sign is kept)

Zero constants stay (no scale to move them on); so do constants of dead statements (they
change nothing). A fit only ever returns a program at least as fit as the one it started
from, and it spends at most `max_evaluations` fitness evaluations, which the caller counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from optsearch.primitives.liveness import live_indices
from optsearch.primitives.program import Program, Statement
from optsearch.search.mutation import EMA_LOW, MAX_CONSTANT

# Two simplex searches, each with half the evaluations: a wide one (each constant first moved
# by a factor e, of c or of 1 - c) that can leave the basin of a nearby optimum -- a search's
# Lion-form program with beta2 0.999 stayed at 0.999 under a 10% simplex (score 0.958) and
# reached 0.990 under a wide one (0.982) -- then a narrow one that polishes.
SIMPLEX_STEPS = (1.0, 0.1)
TOLERANCE = 1e-3  # stop when the simplex spans < 0.1% in every constant
MAX_EXPONENT = math.log(MAX_CONSTANT) + 1.0
MIN_EMA_EXPONENT = math.log(1e-12)  # an interp weight at most 1 - 1e-12
# A final fit, of the winner being simplified (target mode): the fit test reached the target's
# constants within 2% in 200-400 evaluations, seconds of one core for an imitation.
FINAL_FIT_EVALUATIONS = 400


@dataclass(frozen=True)
class Fit:
    program: Program  # the fitted program (the original one if nothing improved it)
    fitness: float  # its fitness, as the score function returned it
    start_fitness: float
    evaluations: int  # score calls spent, the start included
    constants: int  # how many constants were fitted

    @property
    def improved(self) -> bool:
        return self.fitness > self.start_fitness


def constant_sites(program: Program) -> list[tuple[int, int]]:
    """(statement index, argument index) of every nonzero literal in a live statement."""
    live = live_indices(program)
    return [(i, j) for i, stmt in enumerate(program.statements) if i in live
            for j, arg in enumerate(stmt.args)
            if not isinstance(arg, str) and arg != 0 and math.isfinite(arg)]


def _to_coordinate(c: float) -> float:
    return math.log(1.0 - c) if EMA_LOW <= c < 1.0 else math.log(abs(c))


def _from_coordinate(x: float, c0: float) -> float:
    x = min(x, MAX_EXPONENT)  # past it the constant is out of range anyway (loss +inf)
    if EMA_LOW <= c0 < 1.0:
        # stays < 1: an interp weight never flips into an explosion (nor rounds to 1.0)
        return 1.0 - math.exp(max(x, MIN_EMA_EXPONENT))
    return math.copysign(math.exp(x), c0)


def with_constants(program: Program, sites, values) -> Program:
    statements = list(program.statements)
    for (i, j), value in zip(sites, values):
        args = list(statements[i].args)
        args[j] = float(value)
        statements[i] = Statement(statements[i].target, statements[i].op, tuple(args))
    return program.replace_statements(statements)


def fit_constants(program: Program, score, max_evaluations: int = 200) -> Fit:
    """Maximise `score(program) -> float` (higher is better; NaN or -inf for a failure) over
    the program's live constants, starting from their current values."""
    sites = constant_sites(program)
    start = _finite(score(program))
    if not sites or max_evaluations < 2:
        return Fit(program, start, start, 1, 0)
    c0 = [program.statements[i].args[j] for i, j in sites]
    best = {"fitness": start, "values": c0}

    def loss(x: np.ndarray) -> float:
        values = [_from_coordinate(float(xi), c) for xi, c in zip(x, c0)]
        if not all(abs(v) < MAX_CONSTANT for v in values):
            return math.inf
        fitness = _finite(score(with_constants(program, sites, values)))
        if fitness > best["fitness"]:
            best.update(fitness=fitness, values=values)
        return -fitness

    spent, share = 1, (max_evaluations - 1) // len(SIMPLEX_STEPS)
    for step in SIMPLEX_STEPS if share >= 1 else ():
        x0 = np.array([_to_coordinate(c) for c in best["values"]])
        simplex = np.vstack([x0] + [x0 + step * row for row in np.eye(len(x0))])
        result = minimize(loss, x0, method="Nelder-Mead",
                          options={"maxfev": share, "initial_simplex": simplex,
                                   "xatol": TOLERANCE, "fatol": 0.0})
        spent += int(result.nfev)
    fitted = with_constants(program, sites, best["values"]) if best["fitness"] > start \
        else program
    return Fit(fitted, best["fitness"], start, spent, len(sites))


def _finite(value) -> float:
    value = float(value) if value is not None else -math.inf
    return value if math.isfinite(value) else -math.inf

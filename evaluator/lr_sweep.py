"""Step-size-marginalised fitness: a program is scored at its best of N step sizes.

Why: on the search suites the step size alone moves fitness several-fold, more than the
update's form, so an untuned fitness ranks programs by how well their lr constant happens to
fit (docs/FITNESS.md). Scoring every candidate at its best step compares tuned rules, which
is what meta-validation and the paper's claims compare.

The sweep: N multipliers of the program's step, geometric and centred on 1,
`SPACING ** (i - (N - 1) / 2)` (N = 5: 1/16, 1/4, 1, 4, 16). Each multiplier is the program
with its step scaled (`with_lr_factor`); all N train as extra members of the stacked seed
batch (N groups of the K seeds), so the model's forward and backward pass is one batched
call, the groups share their batches, and the cost grows sub-linearly in N. Each group reads
its own step constant (an extra state slot of one compiled rule), so a group's run is
exactly the scaled program's run.

The estimator (no winner's curse): the multiplier is chosen on the first half of the seeds
(the largest geometric-mean per-seed aggregate; ties go to the multiplier nearest 1) and the
fitness reported is that multiplier's geometric-mean per-seed aggregate on the other half.
Choosing and reporting on the same seeds would reward the luckiest of N noisy draws.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from optsearch.evaluator.fitness import FAILURE_FITNESS, Fitness
from optsearch.primitives.codegen import compile_program
from optsearch.primitives.program import Program, Statement

# 4x apart: the references' best steps on the search suites lie up to ~16x from their
# constants (AdamW: ~15x on default), which N = 5 spans; the best grid point is then within
# 2x of a program's best step. The search folds the chosen multiplier into the stored
# program, so a child's sweep is centred on its parent's tuned step.
SPACING = 4.0


def sweep_factors(n: int, spacing: float = SPACING) -> tuple[float, ...]:
    """N step multipliers, geometric with ratio `spacing`, centred on 1 (N = 1: (1.0,))."""
    if n < 1:
        raise ValueError(f"lr sweep needs at least 1 multiplier, got {n}")
    return tuple(float(f"{spacing ** (i - (n - 1) / 2):.12g}") for i in range(n))


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
    """The program with its step size times `factor` (the program itself for factor 1).

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


def _step_slot_program(program: Program, factors) -> tuple[Program, list[float]]:
    """The program with its step constant read from an extra, never written, state slot, and
    that slot's value for each factor: exactly the constant `with_lr_factor` writes (or the
    factor itself where it appends `update = update * factor`; x1.0 there is exact)."""
    slot = "lr_step"
    while slot in program.params or any(s.target == slot for s in program.statements):
        slot += "_"
    statements = list(program.statements)
    index = _lr_constant_statement(program)
    if index is None:
        update = program.returns[0]
        statements.append(Statement(update, "mul", (update, slot)))
        values = [float(f) for f in factors]
    else:
        stmt = statements[index]
        constant = next(a for a in stmt.args if not isinstance(a, str))
        statements[index] = Statement(stmt.target, stmt.op,
                                      tuple(a if isinstance(a, str) else slot for a in stmt.args))
        values = [constant if f == 1.0 else float(f"{constant * f:.12g}") for f in factors]
    params = (*program.params[:-1], slot, program.lr)
    return Program(params, tuple(statements), (*program.returns, slot), program.name), values


class SweepRule:
    """One compiled rule for all N groups of the stacked members (the update-rule protocol):
    the program's step constant comes from an extra state slot holding each member's group
    constant, so member k computes what its group's scaled program computes, op for op."""

    def __init__(self, program: Program, factors, group_size: int):
        slotted, self.values = _step_slot_program(program, factors)
        self.rule = compile_program(slotted, batch_dims=1)
        self.k, self.n_slots = group_size, program.n_slots
        self._steps: dict = {}

    def _step(self, w: torch.Tensor) -> torch.Tensor:
        key = (w.dim(), w.dtype, w.device)
        if key not in self._steps:
            per_group = torch.tensor(self.values, dtype=w.dtype, device=w.device)
            per_member = per_group.repeat_interleave(self.k)
            self._steps[key] = per_member.reshape(-1, *[1] * (w.dim() - 1))
        return self._steps[key]

    def __call__(self, w, g, state, lr):
        update, new_state = self.rule(w, g, (*state, self._step(w)), lr)
        return update, new_state[:-1]


def _geometric_mean(values) -> float:
    values = list(values)
    if not values or min(values) <= 0:
        return FAILURE_FITNESS
    return math.exp(sum(math.log(v) for v in values) / len(values))


def select_step(fitnesses: list[Fitness], factors) -> Fitness:
    """The chosen multiplier's Fitness (one per multiplier in, same seeds), its aggregate
    replaced by the held-out estimate: chosen on the first half of the seeds, reported on
    the rest. Its tasks keep every seed's result, so the folded program reproduces them."""
    k = len(fitnesses[0].seeds)
    if k < 2:
        raise ValueError("an lr sweep needs at least 2 seeds (one to choose, one to report)")
    half = k // 2
    choice = [_geometric_mean(f.seed_aggregates()[:half]) for f in fitnesses]
    best = max(range(len(factors)), key=lambda i: (choice[i], -abs(math.log(factors[i]))))
    chosen = fitnesses[best]
    reported = _geometric_mean(chosen.seed_aggregates()[half:]) if chosen.ok else FAILURE_FITNESS
    seeds = chosen.seeds
    note = (f"lr x{factors[best]:g} of {', '.join(f'{f:g}' for f in factors)}: chosen on seeds "
            f"{','.join(map(str, seeds[:half]))}, reported on {','.join(map(str, seeds[half:]))}")
    message = f"{chosen.message}; {note}" if chosen.message else note
    return dataclasses.replace(chosen, aggregate=reported, lr_factor=factors[best],
                               message=message)

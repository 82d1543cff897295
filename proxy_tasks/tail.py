"""The tail of a task: only its last steps, trained from a reference run's checkpoint.

Why: a rung that trains every step of a shorter, compressed schedule ranks programs by how
they start, and the programs that beat a converged population often act late, e.g. a rule
that reshapes the decaying step size (`sqrt(lr)`) or sign momentum, whose full-run gain
comes where the schedule anneals (docs/HURDLES.md, "Why the hurdle stops the best
children"). The tail sees exactly those steps, at the step sizes of the full schedule, from
weights a reasonable optimizer reached, for a fraction of the cost.

How: a reference rule (the rung uses AdamW, the baseline: evaluator.rungs) trains the task up
to step `S = steps - tail`; its weights there, the (weights, gradient, lr) of its last `history`
steps and the batches of steps S..steps-1 form a `Checkpoint`, made once per process and
seed set. A candidate's state starts at zero and is run through the reference's history
(its updates discarded: the weights stay the reference's), so its moments are warm; then it
trains steps S..steps-1 on the same batches, at the full schedule's lr, with the full run's
divergence limit (the reference's first loss times the task's factor). The candidate's own
early steps are not seen: a program that diverges or crawls early can look good here, which
is why the tail is screened together with a cheap compressed rung (evaluator.rungs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from optsearch.proxy_tasks.base import apply_rule, fresh_start, to_tensors, training_settings
from optsearch.proxy_tasks.schedule import warmup_cosine


@dataclass
class Checkpoint:
    step: int              # the first step the tail trains
    params: dict           # parameter name -> the reference's weights before `step`, [K, ...]
    history: list          # (weights, gradients, lr) of the reference's last steps before it
    batches: list          # the batches of steps step..steps-1
    limit: float           # the full run's divergence limit (from the reference's first loss)

    def resume(self, task, rule, groups: int = 1):
        """(params, warm rule state, batch stream, first step, divergence limit) for `rule`,
        with every tensor repeated for `groups` member groups (evaluator.lr_sweep)."""
        params = {n: _repeat(p, groups).clone().requires_grad_(True)
                  for n, p in self.params.items()}
        state = {n: tuple(torch.zeros_like(p) for _ in range(rule.n_slots))
                 for n, p in params.items()}
        with torch.no_grad():
            for weights, grads, lr in self.history:
                for n, slots in state.items():   # the update is dropped: only the moments move
                    _, new = rule(_repeat(weights[n], groups), _repeat(grads[n], groups),
                                  slots, lr)
                    state[n] = tuple(new)
        batches = iter([b if groups == 1 else task.repeat_batch(b, groups)
                        for b in self.batches])
        return params, state, lambda: next(batches), self.step, self.limit


def _repeat(t: torch.Tensor, groups: int) -> torch.Tensor:
    return t if groups == 1 else t.repeat(groups, *[1] * (t.dim() - 1))


def make_checkpoint(task, rule, seeds, data, device, tail: int, history: int) -> Checkpoint:
    """Train `task` with the reference `rule` up to its last `tail` steps (see module doc)."""
    cfg = task.config
    first = cfg.steps - tail
    warmup = round(cfg.warmup_frac * cfg.steps)
    with training_settings():
        params, state, next_batch, _, _ = fresh_start(task, rule, list(seeds),
                                                      to_tensors(data, device), device, 1)
        past, limit = [], None
        for step in range(first):
            losses = task.loss(params, next_batch())
            if limit is None:
                limit = cfg.divergence_factor * losses.detach().abs().max().item()
            losses.sum().backward()
            lr = warmup_cosine(step, cfg.steps, warmup)
            if step >= first - history:
                past.append(({n: p.detach().clone() for n, p in params.items()},
                             {n: p.grad.detach().clone() for n, p in params.items()}, lr))
            apply_rule(rule, params, state, lr)
        batches = [next_batch() for _ in range(tail)]
    weights = {n: p.detach().clone() for n, p in params.items()}
    return Checkpoint(first, weights, past, batches, limit)

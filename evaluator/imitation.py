"""Imitation fitness: how closely a program's updates follow a target optimizer's.

The gradient stream. The target trains a small real model (a proxy task: teacher-student at a
small size by default) for `steps` steps, K seeds stacked, all parameters of a seed flattened
into one vector. Each step records the weights w_k, the gradient g_k, the schedule value lr_k
and the target's update u_k. This is done once per run; every candidate sees this stream.

Teacher forcing. The candidate runs on the recorded (w_k, g_k, lr_k) -- the target's
trajectory, not its own -- from zero state, and proposes û_k. An early mistake therefore does
not compound into a different trajectory: the k-th error measures the rule, not the history.

The score. Per step and seed the normalised absolute error

    r_k = ||û_k - u_k||_1 / ||u_k||_1

(0 = exact; 1 = doing nothing; a right direction at the wrong step size a*u gives |a - 1|).
Normalising per step weighs every step alike, whatever the schedule or the gradient scale
does to the update size then. Absolute, not squared, error: under a squared error the best
guess at an uncertain sign is a shrunken step (the mean), so imitating Lion an Adam-like rule
at a small lr outscores sign momentum (0.672 vs 0.647); under an absolute error it is the
median, a committed sign (Signum 0.785, AdamW at its best lr 0.628; docs/TARGET.md).

Scale apart. The step size is one constant (the lr) while the direction is the whole rule, and
a sign rule at a wrong lr scores below a soft rule at the right one (sign momentum at half
Lion's lr: r = 0.62; a soft arctan rule tuned to Lion's step size: 0.46), so the search would
have to change form and lr in one mutation. A seed's error is therefore

    r = SCALE_WEIGHT * mean_k r_k(1) + (1 - SCALE_WEIGHT) * mean_k r_k(a*)

where r_k(a) is the error of a * û_k and a* the seed's best scale (a weighted median; 1 if
that is not positive). Form is found first, and the lr is
still refined: for the target at a wrong step size, a * u, r = SCALE_WEIGHT * |a - 1|.

The score is 1 / (1 + r), in (0, 1]: 1 is an exact imitation, 0.5 is as good as no update,
and any finished program scores above the failure value 0; the aggregate is the geometric
mean over seeds. It is continuous in a program's constants (an lr, a weight decay, an EMA
weight), and for a sign of an EMA it changes by one element's flip at a time out of
K*N*steps: it rises steadily towards the target's constants, so the search's modify
mutation can refine them by small steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass

import torch

from optsearch import proxy_tasks
from optsearch.evaluator.fitness import FAILURE_FITNESS, Fitness, TaskFitness
from optsearch.primitives.analysis import check
from optsearch.primitives.codegen import compile_program
from optsearch.primitives.parser import parse
from optsearch.primitives.program import Program, ProgramError
from optsearch.proxy_tasks.schedule import warmup_cosine

TASK_KEY = "imitation"
DO_NOTHING_ERROR = 1.0  # r of a program that returns a zero update: the "baseline"
SCALE_WEIGHT = 0.1  # share of the raw error in r; the rest is the error at the best scale
SCALE_STRIDE = 8  # the best scale is estimated on every 8th weight


@dataclass(frozen=True)
class StreamSpec:
    """Where the gradient stream comes from. The schedule warms up for `warmup_frac` of the
    steps, then follows a cosine that would reach 0 at `steps * horizon`: it ends near 0.1,
    so no step has a zero target update and lr still varies by 10x (lr is identifiable)."""
    task: str = "teacher_student"
    scale: int = 0
    overrides: tuple = (("hidden", (16,)), ("batch_size", 32))
    steps: int = 100
    seeds: tuple = (0, 1)
    warmup_frac: float = 0.05
    horizon: float = 1.25

    def version(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def schedule(self) -> list[float]:
        total, warmup = round(self.steps * self.horizon), round(self.warmup_frac * self.steps)
        return [warmup_cosine(k, total, warmup) for k in range(self.steps)]


DEFAULT_STREAM = StreamSpec()
# A different trajectory for checking a result: other seeds, a wider student, twice as long.
HELD_OUT_STREAM = StreamSpec(overrides=(("hidden", (24,)), ("batch_size", 32)),
                             steps=200, seeds=(100, 101))


@dataclass(frozen=True)
class Stream:
    """A recorded trajectory: w, g and the target's update per step, each [steps, K, N]."""
    w: torch.Tensor
    g: torch.Tensor
    update: torch.Tensor
    lr: tuple  # 0-d float64 tensors, one per step
    norm: torch.Tensor  # [steps, K]: ||u_k||_1, floored so no step divides by zero

    @property
    def seeds(self) -> int:
        return self.w.shape[1]


class TargetDiverged(ValueError):
    """The target itself did not train the recording task (a non-finite loss or update)."""


def record_stream(target, spec: StreamSpec = DEFAULT_STREAM) -> Stream:
    """Train spec.task with the target and record its trajectory (float64 master weights;
    the model's forward and backward run in the task's float32)."""
    task = proxy_tasks.get_task(spec.task, spec.scale, **dict(spec.overrides))
    data = {k: torch.from_numpy(v) for k, v in task.load_data().items()}
    seeds = list(spec.seeds)
    params = task.init_params(seeds, "cpu")
    shapes = {name: p.shape[1:] for name, p in params.items()}
    theta = torch.cat([p.reshape(len(seeds), -1) for p in params.values()], 1).double()
    next_batch, step = task.batches(seeds, data, "cpu"), target.stepper(theta)
    ws, gs, us = [], [], []
    for lr in spec.schedule():
        flat = theta.float().requires_grad_(True)
        loss = task.loss(_unflatten(flat, shapes), next_batch())
        if not torch.isfinite(loss).all():
            raise TargetDiverged(f"{target.label}: the loss became non-finite on {spec.task}")
        loss.sum().backward()
        g = flat.grad.double()
        update = step(theta, g, torch.tensor(lr, dtype=torch.float64))
        if not torch.isfinite(update).all():
            raise TargetDiverged(f"{target.label}: a non-finite update on {spec.task}")
        ws.append(theta)
        gs.append(g)
        us.append(update.detach().clone())
        theta = theta - us[-1]
    update = torch.stack(us)
    norm = update.abs().sum(-1)
    norm = norm.clamp_min(1e-12 * float(norm.mean()) + 1e-300)
    return Stream(torch.stack(ws), torch.stack(gs), update,
                  tuple(torch.tensor(lr, dtype=torch.float64) for lr in spec.schedule()), norm)


def _unflatten(flat: torch.Tensor, shapes: dict) -> dict:
    out, offset = {}, 0
    for name, shape in shapes.items():
        n = math.prod(shape)
        out[name] = flat[:, offset:offset + n].reshape(flat.shape[0], *shape)
        offset += n
    return out


def proposed_updates(rule, stream: Stream) -> torch.Tensor:
    """û_k of a compiled rule (batch_dims=1) under teacher forcing, [steps, K, N]."""
    state = tuple(torch.zeros_like(stream.w[0]) for _ in range(rule.n_slots))
    out = torch.empty_like(stream.update)
    with torch.no_grad():
        for k, (w, g, lr) in enumerate(zip(stream.w, stream.g, stream.lr)):
            proposed, state = rule(w, g, state, lr)
            out[k] = proposed
    return out


def step_errors(proposed: torch.Tensor, stream: Stream, scale=1.0) -> torch.Tensor:
    """r_k = ||scale * û_k - u_k||_1 / ||u_k||_1 per step and seed, [steps, K]."""
    return torch.linalg.vector_norm(proposed * scale - stream.update, ord=1, dim=-1) / stream.norm


def best_scale(proposed: torch.Tensor, stream: Stream) -> torch.Tensor:
    """Per seed, the factor a minimising sum_k r_k(a): the median of u / û weighted by
    |û| / ||u_k||_1 (least squares would shrink an uncertain sign again), estimated on every
    SCALE_STRIDE-th weight (the sort is the cost). 1 where it is not a positive number (no
    update, or one that points against the target's)."""
    k = proposed.shape[1]
    sub = proposed[..., ::SCALE_STRIDE]
    p = sub.transpose(0, 1).reshape(k, -1)
    u = stream.update[..., ::SCALE_STRIDE].transpose(0, 1).reshape(k, -1)
    weight = (sub.abs() / stream.norm[..., None]).transpose(0, 1).reshape(k, -1)
    ratio = torch.where(p != 0, u / p, torch.zeros_like(u))
    ratio, order = ratio.sort(dim=1)
    cumulative = weight.gather(1, order).cumsum(1)
    half = cumulative[:, -1:] / 2
    index = torch.searchsorted(cumulative, half).clamp_max(ratio.shape[1] - 1)
    scale = ratio.gather(1, index).squeeze(1)
    return torch.where(torch.isfinite(scale) & (scale > 0), scale, torch.ones_like(scale))


def seed_errors(proposed: torch.Tensor, stream: Stream) -> torch.Tensor:
    """r per seed: SCALE_WEIGHT of the raw error plus the rest of the error at the best
    scale (see the module docstring)."""
    raw = step_errors(proposed, stream).mean(0)
    fitted = step_errors(proposed, stream, best_scale(proposed, stream)[None, :, None]).mean(0)
    return SCALE_WEIGHT * raw + (1.0 - SCALE_WEIGHT) * fitted


def imitation_fitness(program, stream: Stream, label: str = "", version: str = "") -> Fitness:
    """The Fitness of `program` (Program or text) as an imitation of the stream's target."""
    t0 = time.perf_counter()
    seeds = tuple(range(stream.seeds))
    meta = {"seeds": seeds, "suite": f"target:{label}", "suite_version": version}
    try:
        if not isinstance(program, Program):
            program = parse(program)
        check(program)
        rule = compile_program(program, batch_dims=1)
    except ProgramError as exc:
        where = f"line {exc.line}: " if exc.line else ""
        return Fitness.failure("invalid", where + exc.message, **meta)
    try:
        errors = seed_errors(proposed_updates(rule, stream), stream)
    except Exception as exc:  # noqa: BLE001 -- a program must never crash the evaluator
        return Fitness.failure("error", f"{type(exc).__name__}: {exc}",
                               cost_s=time.perf_counter() - t0, **meta)
    cost = time.perf_counter() - t0
    per_seed = errors.tolist()
    status = "ok" if all(math.isfinite(r) for r in per_seed) else "diverged"
    # score 1 / (1 + r), not the suites' baseline / r (unbounded above, capped at 1000)
    scores = tuple(1.0 / (1.0 + r) if status == "ok" else FAILURE_FITNESS for r in per_seed)
    score = math.exp(sum(map(math.log, scores)) / len(scores)) if status == "ok" else \
        FAILURE_FITNESS
    task = TaskFitness(sum(per_seed) / len(per_seed), score, tuple(per_seed), scores,
                       (DO_NOTHING_ERROR,) * len(per_seed), True, status, len(stream.lr), cost)
    return Fitness.from_tasks({TASK_KEY: task}, seeds, cost, meta["suite"], version)


def relative_update_error(program: Program, stream: Stream) -> float:
    """sum ||û - u||_1 / sum ||u||_1 over the whole stream: "within 10%" is <= 0.1."""
    rule = compile_program(program, batch_dims=1)
    errors = step_errors(proposed_updates(rule, stream), stream) * stream.norm
    return float(errors.sum() / stream.norm.sum())

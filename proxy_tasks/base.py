"""TaskResult and the training loop every proxy task shares.

A task supplies the model (init / loss / evaluation) and a per-seed batch stream; this module
owns what must be identical across tasks: the schedule, how the update rule is applied to
stacked parameters, divergence and timeout handling, and thread settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from optsearch.proxy_tasks.schedule import warmup_cosine


@dataclass
class TaskResult:
    metric: list[float]          # one value per seed, in the order of `seeds`
    lower_is_better: bool
    status: str                  # "ok" | "diverged" | "timeout"
    steps: int                   # optimisation steps actually taken
    seconds: float
    # every metric the task measured ({"error": [...], "loss": [...]}); `metric` is one of them
    details: dict = field(default_factory=dict)
    # with member groups (run(groups=G)): each group's own status and steps; `status` is "ok"
    # while any group is
    group_status: list[str] | None = None
    group_steps: list[int] | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Fields every task config has (tasks subclass this and add model/data fields)."""
    steps: int = 1000
    batch_size: int = 32
    warmup_frac: float = 0.05
    metric: str = "loss"            # which evaluation metric is the task's fitness
    divergence_factor: float = 10.0  # train loss above this x the initial loss = diverged
    failure_metric: float = 10.0    # finite metric reported for diverged / timed-out runs


class ProxyTask:
    """Base class: subclasses set `name`, `salt` and implement the model hooks below."""

    name = "base"
    salt = 0              # distinguishes this task's random streams from other tasks'
    # Bump when a code change moves this task's results (even by rounding): the suite
    # version, and so the fitness cache and the cached baselines, must change with them.
    revision = 0
    lower_is_better = True

    def __init__(self, config: TrainConfig, scale: int):
        self.config, self.scale = config, scale

    # ---- hooks -------------------------------------------------------------------------
    def load_data(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def init_params(self, seeds, device) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def batches(self, seeds, data: dict[str, torch.Tensor], device):
        """Return a zero-argument callable giving the next stacked batch."""
        raise NotImplementedError

    def loss(self, params, batch) -> torch.Tensor:
        """Per-seed training loss, shape [K]."""
        raise NotImplementedError

    def evaluate(self, params, data) -> dict[str, torch.Tensor]:
        """Per-seed evaluation metrics (name -> [K]); config.metric selects the fitness."""
        raise NotImplementedError

    def repeat_batch(self, batch, groups: int):
        """A batch of K seeds for `groups` copies of those seeds (the groups of an lr sweep
        see the same data, drawn once): every tensor's leading member dim repeated. A task
        whose batch also carries tensors shared by all members overrides this."""
        if isinstance(batch, torch.Tensor):
            return batch.repeat(groups, *[1] * (batch.dim() - 1))
        return tuple(self.repeat_batch(part, groups) for part in batch)

    # ---- shared ------------------------------------------------------------------------
    def fingerprint(self) -> dict:
        """What the suite version hashes: task identity, code revision and the full config.
        (Revision 0 is left out, so tasks never revised keep the versions they had.)"""
        out = {"name": self.name, "scale": self.scale, "config": dataclasses.asdict(self.config)}
        return out | ({"revision": self.revision} if self.revision else {})

    def data_hash(self, data: dict[str, np.ndarray]) -> str:
        h = hashlib.sha256()
        for key in sorted(data):
            arr = np.ascontiguousarray(data[key])
            h.update(key.encode() + str(arr.dtype).encode() + str(arr.shape).encode())
            h.update(arr.tobytes())
        return h.hexdigest()[:16]

    def run(self, rule, seeds, data, device="cpu", time_limit_s=None, observe=None,
            groups: int = 1, start=None) -> TaskResult:
        """Train `seeds` with `rule`; `observe(step, params)`, if given, is called after each
        update (diagnostics such as scripts/research/diag_hidden_biases.py; the search passes none).

        groups > 1: `seeds` is K seeds repeated `groups` times, one contiguous group per
        program of an lr sweep (evaluator.lr_sweep). The groups see the same batches (drawn
        once) and diverge independently: a diverged group's members report the failure
        metric and the others train on. Members never interact (the loss is a sum of
        per-member losses), so a group's numbers are those its program gets alone.

        start: a proxy_tasks.tail.Checkpoint to train only the last steps from (the tail
        rung); None trains every step from the task's initialisation."""
        with training_settings():
            return _train(self, rule, list(seeds), data, device, time_limit_s, observe, groups,
                          start)


@contextlib.contextmanager
def training_settings():
    """The thread and float settings every training run uses, restored afterwards."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)   # one worker per core: intra-op threads would oversubscribe
    # Adam's second moment decays into denormal floats late in training; on x86 CPUs
    # denormal arithmetic is ~10x slower, which made AdamW cost 2-3x more than Signum.
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(previous_threads)


def to_tensors(data: dict[str, np.ndarray], device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in data.items()}


def _failed(task, seeds, status, steps, t0) -> TaskResult:
    fail = float(task.config.failure_metric)
    return TaskResult([fail] * len(seeds), task.lower_is_better, status, steps,
                      time.perf_counter() - t0)


def apply_rule(rule, params, state, lr: float) -> None:
    """w <- w - update for every stacked parameter; the rule sees [K, *shape] tensors."""
    with torch.no_grad():
        for name, w in params.items():
            update, new_state = rule(w, w.grad, state[name], lr)
            w.sub_(update)
            w.grad = None
            state[name] = tuple(new_state)


def _diverged(losses, limit, groups) -> torch.Tensor:
    """Per group: any member's loss non-finite or above the limit (compared in float64,
    as Python compares the float32 loss with the limit)."""
    per_group = losses.detach().double().reshape(groups, -1)
    return (~torch.isfinite(per_group) | (per_group > limit)).any(dim=1)


def _batches(task, seeds, tensors, device, groups):
    """The batch stream; with groups (the same seeds repeated), drawn for one group only."""
    if groups == 1:
        return task.batches(seeds, tensors, device)
    one_group = task.batches(seeds[:len(seeds) // groups], tensors, device)
    return lambda: task.repeat_batch(one_group(), groups)


def fresh_start(task, rule, seeds, tensors, device, groups):
    """(params, rule state, batch stream, first step, divergence limit) of a run from the
    task's initialisation: zero state, limit set by the first loss."""
    params = task.init_params(seeds, device)
    for p in params.values():
        p.requires_grad_(True)
    state = {n: tuple(torch.zeros_like(p) for _ in range(rule.n_slots)) for n, p in params.items()}
    return params, state, _batches(task, seeds, tensors, device, groups), 0, None


def _train(task, rule, seeds, data, device, time_limit_s, observe=None, groups=1,
           start=None) -> TaskResult:
    cfg, t0 = task.config, time.perf_counter()
    died = [None] * groups   # the step at which each group diverged
    tensors = to_tensors(data, device)
    begin = fresh_start(task, rule, seeds, tensors, device, groups) if start is None else \
        start.resume(task, rule, groups)
    params, state, next_batch, first, limit = begin
    warmup = round(cfg.warmup_frac * cfg.steps)
    for step in range(first, cfg.steps):
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            return _failed(task, seeds, "timeout", step, t0)
        losses = task.loss(params, next_batch())
        if limit is None:
            limit = cfg.divergence_factor * losses.detach().abs().max().item()
        if groups == 1:
            worst = losses.detach().max().item()
            if not math.isfinite(worst) or worst > limit:
                return _failed(task, seeds, "diverged", step, t0)
        else:
            for g in _diverged(losses, limit, groups).nonzero().flatten().tolist():
                died[g] = step if died[g] is None else died[g]
            if all(d is not None for d in died):
                return _failed(task, seeds, "diverged", step, t0)
        losses.sum().backward()   # sum of per-seed losses: each seed gets its own gradient
        apply_rule(rule, params, state, warmup_cosine(step, cfg.steps, warmup))
        if observe is not None:
            observe(step, params)
    if groups == 1:
        return _finish(task, seeds, params, tensors, cfg.steps, t0)
    return _finish_groups(task, seeds, params, tensors, cfg.steps, t0, died)


def _finish(task, seeds, params, tensors, steps, t0) -> TaskResult:
    with torch.no_grad():
        metrics = {k: v.double().cpu().numpy() for k, v in task.evaluate(params, tensors).items()}
    chosen = metrics[task.config.metric]
    if not np.all(np.isfinite(chosen)):
        return _failed(task, seeds, "diverged", steps, t0)
    details = {k: [float(x) for x in v] for k, v in metrics.items()}
    return TaskResult([float(x) for x in chosen], task.lower_is_better, "ok", steps,
                      time.perf_counter() - t0, details)


def _finish_groups(task, seeds, params, tensors, steps, t0, died) -> TaskResult:
    """Per-group outcome: a group that diverged, or ends non-finite, reports the failure
    metric for its members; the run is "ok" while one group is."""
    with torch.no_grad():
        metrics = {k: v.double().cpu().numpy() for k, v in task.evaluate(params, tensors).items()}
    chosen = metrics[task.config.metric].reshape(len(died), -1)
    status, group_steps = [], []
    for g, step in enumerate(died):
        ok = step is None and bool(np.all(np.isfinite(chosen[g])))
        status.append("ok" if ok else "diverged")
        group_steps.append(steps if step is None else step)
        if not ok:
            chosen[g] = task.config.failure_metric
    details = {k: [float(x) for x in v] for k, v in metrics.items()}
    return TaskResult([float(x) for x in chosen.ravel()], task.lower_is_better,
                      "ok" if "ok" in status else "diverged", steps, time.perf_counter() - t0,
                      details, status, group_steps)


def config_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]

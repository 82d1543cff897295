"""Fitness of a program: per-task scores normalised against the AdamW baseline, aggregated.

Normalisation (one rule for every task, chosen so that scores are comparable across tasks
with metrics of very different size -- an error rate of 0.03, a loss of 1.4):

    score(seed) = baseline(seed) / metric(seed)      lower-is-better metrics (loss, error)
    score(seed) = metric(seed) / baseline(seed)      higher-is-better metrics (accuracy)

where `baseline(seed)` is the AdamW reference program's metric on the *same seed* (same
initialisation and data stream, so the ratio is a paired comparison and seed noise largely
cancels). Both numbers are floored at `METRIC_FLOOR` (metrics are positive by the task
contract; the floor only keeps 0/0 finite) and the ratio is capped at `SCORE_CAP`, so a
score lies in (0, SCORE_CAP]. AdamW scores exactly 1.0 on every task; 1.25 means "the metric
is 1.25x better than AdamW's"; a program that does nothing typically scores well below 1.

Scores are ratios, so they are averaged *geometrically*: a task's score is the geometric
mean of its per-seed scores and the aggregate the geometric mean of the task scores
(equivalently, the geometric mean over seeds of the per-seed aggregates, whose spread across
seeds `seed_aggregates()` exposes as the noise estimate the simplifier needs). Why not the
arithmetic mean: the warm start is far from tuned, so ratios span orders of magnitude, and
an arithmetic mean (with the earlier cap of 10) let one task decide the suite -- measured on
the first default suite, where a 10x-capped heavy-tailed quadratic made the sign of the
current gradient win although it was the worst sign method on the other task
(docs/research/2026-11-25-first-default-suite.md). A geometric mean makes a 2x gain on one task worth a 2x loss on another.

Failures are values: a program that is invalid, diverges (NaN/Inf/exploding loss), runs out
of time or raises gets `FAILURE_FITNESS` (0.0, below any finished program's score) as its
aggregate, and the status says why. Evaluation stops at the first failing task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

STATUSES = ("ok", "invalid", "diverged", "timeout", "error")
FAILURE_FITNESS = 0.0
SCORE_CAP = 1000.0   # only keeps a metric that reaches 0 finite; geometric means bound its weight
METRIC_FLOOR = 1e-12
# Outcomes that depend only on (program, suite, seeds): safe to cache. A timeout depends on
# machine load and an error may be a crashed worker, so those are re-evaluated next time.
DETERMINISTIC_STATUSES = ("ok", "invalid", "diverged")


def normalise(metric: float, baseline: float, lower_is_better: bool) -> float:
    """Score of one metric value against the baseline's value (see module docstring)."""
    if not math.isfinite(metric):
        return FAILURE_FITNESS
    m, b = max(metric, METRIC_FLOOR), max(baseline, METRIC_FLOOR)
    return min(b / m if lower_is_better else m / b, SCORE_CAP)


def _mean(values) -> float:
    """Geometric mean; any failed (0) value makes it 0, an empty list is a failure."""
    values = list(values)
    if not values or min(values) <= 0:
        return FAILURE_FITNESS
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _arithmetic_mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else FAILURE_FITNESS


@dataclass(frozen=True)
class TaskFitness:
    """One task's outcome: metric per seed, the baseline's, and the normalised score."""
    metric_mean: float            # mean over seeds of the task's metric
    score: float                  # geometric mean over seeds of the per-seed scores
    per_seed: tuple[float, ...]   # the metric for each seed, in the order of Fitness.seeds
    seed_scores: tuple[float, ...]
    baseline: tuple[float, ...]   # AdamW's metric for each seed
    lower_is_better: bool
    status: str
    steps: int
    seconds: float

    @classmethod
    def scored(cls, per_seed, baseline, lower_is_better, status, steps, seconds):
        per_seed, baseline = tuple(map(float, per_seed)), tuple(map(float, baseline))
        if status == "ok":
            seed_scores = tuple(normalise(m, b, lower_is_better)
                                for m, b in zip(per_seed, baseline))
        else:
            seed_scores = (FAILURE_FITNESS,) * len(per_seed)
        return cls(_arithmetic_mean(per_seed), _mean(seed_scores), per_seed, seed_scores, baseline,
                   bool(lower_is_better), status, int(steps), float(seconds))

    def to_dict(self) -> dict:
        return {"metric": self.metric_mean, "score": self.score, "per_seed": list(self.per_seed),
                "seed_scores": list(self.seed_scores), "baseline": list(self.baseline),
                "lower_is_better": self.lower_is_better, "status": self.status,
                "steps": self.steps, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict) -> TaskFitness:
        return cls(float(d["metric"]), float(d["score"]), tuple(d["per_seed"]),
                   tuple(d["seed_scores"]), tuple(d["baseline"]), bool(d["lower_is_better"]),
                   d["status"], int(d["steps"]), float(d["seconds"]))


@dataclass(frozen=True)
class Fitness:
    """The result of evaluating one program on a suite; higher `aggregate` is better."""
    status: str
    aggregate: float
    tasks: dict = field(default_factory=dict)   # task key -> TaskFitness
    seeds: tuple[int, ...] = ()
    cost_s: float = 0.0
    message: str = ""       # why it failed (the ProgramError, exception or failing task)
    suite: str = ""
    suite_version: str = ""
    lr_factor: float = 1.0  # the step multiplier an lr sweep chose (evaluator.lr_sweep)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown fitness status {self.status!r}")
        if not math.isfinite(self.aggregate):
            raise ValueError("fitness aggregate must be finite")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cacheable(self) -> bool:
        return self.status in DETERMINISTIC_STATUSES

    @classmethod
    def from_tasks(cls, tasks: dict, seeds, cost_s, suite="", suite_version=""):
        """Aggregate task outcomes; the first failing task decides status and message."""
        failed = [(k, t) for k, t in tasks.items() if t.status != "ok"]
        if failed:
            key, task = failed[0]
            return cls(task.status, FAILURE_FITNESS, dict(tasks), tuple(seeds), cost_s,
                       f"task {key}: {task.status} after {task.steps} steps", suite,
                       suite_version)
        aggregate = _mean(t.score for t in tasks.values())
        return cls("ok", aggregate, dict(tasks), tuple(seeds), cost_s, "", suite, suite_version)

    @classmethod
    def failure(cls, status, message, seeds=(), cost_s=0.0, suite="", suite_version=""):
        return cls(status, FAILURE_FITNESS, {}, tuple(seeds), cost_s, message, suite,
                   suite_version)

    def seed_aggregates(self) -> list[float]:
        """Aggregate per seed (geometric mean over tasks of that seed's score): the seed-noise
        sample; their geometric mean is `aggregate`."""
        if not self.tasks:
            return [self.aggregate] * len(self.seeds)
        columns = zip(*(t.seed_scores for t in self.tasks.values()))
        return [_mean(col) if self.ok else FAILURE_FITNESS for col in columns]

    def to_dict(self) -> dict:
        return {"status": self.status, "aggregate": self.aggregate,
                "tasks": {k: t.to_dict() for k, t in self.tasks.items()},
                "seeds": list(self.seeds), "cost_s": self.cost_s, "message": self.message,
                "suite": self.suite, "suite_version": self.suite_version,
                **({"lr_factor": self.lr_factor} if self.lr_factor != 1.0 else {})}

    @classmethod
    def from_dict(cls, d: dict) -> Fitness:
        tasks = {k: TaskFitness.from_dict(t) for k, t in d.get("tasks", {}).items()}
        return cls(d["status"], float(d["aggregate"]), tasks, tuple(d.get("seeds", ())),
                   float(d.get("cost_s", 0.0)), d.get("message", ""), d.get("suite", ""),
                   d.get("suite_version", ""), float(d.get("lr_factor", 1.0)))

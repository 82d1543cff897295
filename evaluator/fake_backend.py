"""A fake evaluation backend: a deterministic fitness of the program text, no training.

It implements the evaluator's backend interface (`capacity`, `submit`, `poll`, `close`) so the
search, the store and the CLI can be tested -- and demonstrated -- in milliseconds. The fitness
rewards `sign` in the live program (the step from AdamW towards Lion), prefers short live
programs, and marks programs using `exp` as diverged so that failures are exercised too.
Its rung (`submit(..., rung=True)`) is the same score with other noise, as a shorter run is
a noisy estimate of the full one.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque

import numpy as np

from optsearch.evaluator.backends import Backend
from optsearch.evaluator.evaluate import DEFAULT_SEEDS
from optsearch.evaluator.fitness import Fitness
from optsearch.evaluator.suites import Suite
from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.liveness import live_program
from optsearch.primitives.parser import parse

ADAMW_LIVE_STATEMENTS = 9  # so that AdamW scores about 1.0, as with the real evaluator
# No tasks; the version keys cached fake fitness apart from every real suite's.
FAKE_SUITE = Suite("fake", {}, version="fake-1")


def fake_fitness(program_text: str, seeds=(), rung: Suite | None = None) -> Fitness:
    program = parse(program_text)
    ops = [s.op for s in live_program(program).statements]
    suite = rung or FAKE_SUITE
    meta = {"seeds": tuple(seeds), "suite": suite.name, "suite_version": suite.version}
    if "exp" in ops:
        return Fitness.failure("diverged", "exp in the live program", **meta)
    # A small, deterministic "noise" term from the structure breaks ties between programs.
    salt = "rung:" if rung is not None else ""
    noise = int(hashlib.blake2b((salt + structural_hash(program)).encode(),
                                digest_size=4).hexdigest(), 16) / 2**32
    score = 1.0 + 0.5 * ("sign" in ops) - 0.02 * (len(ops) - ADAMW_LIVE_STATEMENTS) + 0.05 * noise
    return Fitness("ok", score, **meta)


class FakeBackend(Backend):
    """`order="submission"` behaves like the serial backend (finish order = submission order);
    `order="random"` finishes a random in-flight job each poll (seeded), like a Ray pool."""

    suite = FAKE_SUITE

    def __init__(self, workers: int = 1, seeds=DEFAULT_SEEDS, delay_s: float = 0.0,
                 order: str = "submission", seed: int = 0, rung_fraction: float | None = None,
                 rung_kind: str = "compressed"):
        self.capacity = workers
        self.seeds = tuple(int(s) for s in seeds)
        self.delay_s = delay_s
        self.order = order
        self.rng = np.random.default_rng(seed)
        self.rung_fraction = rung_fraction
        if rung_fraction is not None:   # the kind only names the rung: its score is a formula
            rung = ("rung" if rung_kind == "compressed" else rung_kind) + f"{rung_fraction:g}"
            self.rung_suite = Suite(f"fake@{rung}", {}, version=f"{FAKE_SUITE.version}@{rung}")
        self.queue: deque[tuple[int, str, bool]] = deque()
        self.submitted: list[int] = []  # every full job id ever submitted (tests inspect this)
        self.submitted_rungs: list[int] = []

    def submit(self, job_id: int, program_text: str, rung: bool = False) -> None:
        if rung and self.rung_fraction is None:
            raise ValueError("this backend was made without a rung_fraction")
        self.queue.append((job_id, program_text, rung))
        (self.submitted_rungs if rung else self.submitted).append(job_id)

    @property
    def pending(self) -> int:
        return len(self.queue)

    def poll(self, timeout_s: float | None = None) -> list:
        if not self.queue:
            time.sleep(min(timeout_s or 0.0, 0.01))
            return []
        if self.order == "random":
            self.queue.rotate(-int(self.rng.integers(len(self.queue))))
        job_id, text, rung = self.queue.popleft()
        if self.delay_s:
            time.sleep(self.delay_s * (self.rung_fraction if rung else 1.0))
        return [(job_id, fake_fitness(text, self.seeds, self.rung_suite if rung else None),
                 "fake-0")]

    def close(self) -> None:
        self.queue.clear()

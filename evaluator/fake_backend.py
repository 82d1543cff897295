"""A fake evaluation backend: a deterministic fitness of the program text, no training.

It implements the evaluator's backend interface (`capacity`, `submit`, `poll`, `close`) so the
search, the store and the CLI can be tested -- and demonstrated -- in milliseconds. The fitness
rewards `sign` in the live program (the step from AdamW towards Lion), prefers short live
programs, and marks programs using `exp` as diverged so that failures are exercised too.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np

from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.liveness import live_program
from optsearch.primitives.parser import parse

ADAMW_LIVE_STATEMENTS = 9  # so that AdamW scores about 1.0, as with the real evaluator


@dataclass
class FakeFitness:
    status: str
    aggregate: float
    tasks: dict = field(default_factory=dict)
    cost_s: float = 0.0

    @property
    def cacheable(self) -> bool:
        return self.status in ("ok", "diverged")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FakeFitness:
        return cls(**data)


def fake_fitness(program_text: str) -> FakeFitness:
    program = parse(program_text)
    ops = [s.op for s in live_program(program).statements]
    if "exp" in ops:
        return FakeFitness("diverged", 0.0)
    # A small, deterministic "noise" term from the structure breaks ties between programs.
    noise = int(hashlib.blake2b(structural_hash(program).encode(), digest_size=4).hexdigest(),
                16) / 2**32
    score = 1.0 + 0.5 * ("sign" in ops) - 0.02 * (len(ops) - ADAMW_LIVE_STATEMENTS) + 0.05 * noise
    return FakeFitness("ok", score)


class FakeBackend:
    """`order="submission"` behaves like the serial backend (finish order = submission order);
    `order="random"` finishes a random in-flight job each poll (seeded), like a Ray pool."""

    suite_version = "fake-1"

    def __init__(self, workers: int = 1, delay_s: float = 0.0, order: str = "submission",
                 seed: int = 0):
        self.capacity = workers
        self.delay_s = delay_s
        self.order = order
        self.rng = np.random.default_rng(seed)
        self.queue: deque[tuple[int, str]] = deque()
        self.submitted: list[int] = []  # every job id ever submitted (tests inspect this)

    def submit(self, job_id: int, program_text: str) -> None:
        self.queue.append((job_id, program_text))
        self.submitted.append(job_id)

    def poll(self, timeout_s: float) -> list:
        if not self.queue:
            time.sleep(min(timeout_s, 0.01))
            return []
        if self.order == "random":
            self.queue.rotate(-int(self.rng.integers(len(self.queue))))
        job_id, text = self.queue.popleft()
        if self.delay_s:
            time.sleep(self.delay_s)
        return [(job_id, fake_fitness(text), "fake-0")]

    def close(self) -> None:
        self.queue.clear()

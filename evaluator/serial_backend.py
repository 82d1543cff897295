"""SerialBackend: evaluates in the calling process, inside `poll`, in submission order.

Deterministic and dependency-free, so tests and small runs need no Ray. Data and the AdamW
baseline are loaded once at construction, like the Ray workers do.
"""

from __future__ import annotations

import collections
import time

from optsearch.evaluator.backends import Backend
from optsearch.evaluator.baseline import baseline_metrics
from optsearch.evaluator.evaluate import DEFAULT_SEEDS, DEFAULT_TIME_LIMIT_S, evaluate
from optsearch.evaluator.suites import resolve_suite


class SerialBackend(Backend):
    capacity = 1
    worker_name = "serial"

    def __init__(self, suite="default", seeds=DEFAULT_SEEDS,
                 time_limit_s=DEFAULT_TIME_LIMIT_S, device="cpu", cache_dir=None):
        self.suite, self.seeds = resolve_suite(suite), tuple(seeds)
        self.time_limit_s, self.device = time_limit_s, device
        self.data = self.suite.load_data()
        self.baseline = baseline_metrics(self.suite, self.seeds, device, self.data, cache_dir)
        self._queue: collections.deque = collections.deque()

    def submit(self, job_id: int, program_text: str) -> None:
        self._queue.append((job_id, program_text))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def poll(self, timeout_s: float | None = None) -> list:
        """Evaluate queued jobs in order: at least one, then more while `timeout_s` lasts."""
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        done = []
        while self._queue:
            job_id, text = self._queue.popleft()
            fitness = evaluate(text, self.suite, self.seeds, self.device, self.data,
                               self.time_limit_s, self.baseline)
            done.append((job_id, fitness, self.worker_name))
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return done

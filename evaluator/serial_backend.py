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
from optsearch.evaluator.rungs import rung_suite, rung_time_limit
from optsearch.evaluator.suites import resolve_suite


class SerialBackend(Backend):
    capacity = 1
    worker_name = "serial"

    def __init__(self, suite="default", seeds=DEFAULT_SEEDS,
                 time_limit_s=DEFAULT_TIME_LIMIT_S, device="cpu", cache_dir=None,
                 rung_fraction=None, lr_sweep=1):
        self.suite, self.seeds = resolve_suite(suite), tuple(seeds)
        self.lr_sweep = lr_sweep
        self.time_limit_s, self.device = time_limit_s, device
        self.data = self.suite.load_data()   # the rung's tasks use the same data
        self.baseline = baseline_metrics(self.suite, self.seeds, device, self.data, cache_dir)
        self._fidelity = {False: (self.suite, self.baseline, time_limit_s)}
        if rung_fraction is not None:
            self.rung_suite = rung_suite(self.suite, rung_fraction)
            self._fidelity[True] = (
                self.rung_suite,
                baseline_metrics(self.rung_suite, self.seeds, device, self.data, cache_dir),
                rung_time_limit(time_limit_s, rung_fraction))
        self._queue: collections.deque = collections.deque()

    def submit(self, job_id: int, program_text: str, rung: bool = False) -> None:
        if rung not in self._fidelity:
            raise ValueError("this backend was made without a rung_fraction")
        self._queue.append((job_id, program_text, rung))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def poll(self, timeout_s: float | None = None) -> list:
        """Evaluate queued jobs in order: at least one, then more while `timeout_s` lasts."""
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        done = []
        while self._queue:
            job_id, text, rung = self._queue.popleft()
            suite, baseline, time_limit_s = self._fidelity[rung]
            fitness = evaluate(text, suite, self.seeds, self.device, self.data, time_limit_s,
                               baseline, self.lr_sweep)
            done.append((job_id, fitness, self.worker_name))
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return done

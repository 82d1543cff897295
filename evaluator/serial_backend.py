"""SerialBackend: evaluates in the calling process, inside `poll`, in submission order.

Deterministic and dependency-free, so tests and small runs need no Ray. Data and the AdamW
baseline are loaded once at construction, like the Ray workers do.
"""

from __future__ import annotations

from optsearch.evaluator.backends import InProcessBackend
from optsearch.evaluator.baseline import baseline_metrics
from optsearch.evaluator.evaluate import DEFAULT_SEEDS, DEFAULT_TIME_LIMIT_S, evaluate
from optsearch.evaluator.rungs import rung_suite, rung_time_limit
from optsearch.evaluator.suites import resolve_suite


class SerialBackend(InProcessBackend):
    worker_name = "serial"

    def __init__(self, suite="default", seeds=DEFAULT_SEEDS,
                 time_limit_s=DEFAULT_TIME_LIMIT_S, device="cpu", cache_dir=None,
                 rung_fraction=None, lr_sweep=1, rung_kind="compressed"):
        self.suite, self.seeds = resolve_suite(suite), tuple(seeds)
        self.lr_sweep = lr_sweep
        self.time_limit_s, self.device = time_limit_s, device
        self.data = self.suite.load_data()   # the rung's tasks use the same data
        self.baseline = baseline_metrics(self.suite, self.seeds, device, self.data, cache_dir)
        self._fidelity = {False: (self.suite, self.baseline, time_limit_s)}
        if rung_fraction is not None:
            self.rung_suite = rung_suite(self.suite, rung_fraction, rung_kind)
            self._fidelity[True] = (
                self.rung_suite,
                baseline_metrics(self.rung_suite, self.seeds, device, self.data, cache_dir),
                rung_time_limit(time_limit_s, rung_fraction))
        super().__init__()

    def accepts(self, rung: bool) -> bool:
        return rung in self._fidelity

    def evaluate_job(self, program_text: str, rung: bool):
        suite, baseline, time_limit_s = self._fidelity[rung]
        return evaluate(program_text, suite, self.seeds, self.device, self.data, time_limit_s,
                        baseline, self.lr_sweep)

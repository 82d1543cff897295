"""A live progress bar for a search: evaluations, eval/s, best fitness, cache hit rate."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    def __init__(self, total: int | None, initial: int = 0, enabled: bool = True):
        # total None: a time-budgeted run, the bar counts without a percentage.
        # Not a terminal (CI logs, pipes): redraw every 30 s instead of every 0.1 s.
        self.fixed_total = total is not None
        self.bar = tqdm(total=total, initial=initial, unit="eval", dynamic_ncols=True,
                        disable=not enabled, file=sys.stderr, smoothing=0.1,
                        mininterval=0.1 if sys.stderr.isatty() else 30.0)

    def __call__(self, driver) -> None:
        """The driver's `on_step` hook: called after every committed step."""
        c = driver.counters
        if self.fixed_total:
            self.bar.total = driver.budget
        done = c["cache_hits"] + c["screened"]
        best = driver.best.fitness if driver.best is not None else float("nan")
        self.bar.set_postfix(best=f"{best:.4f}", hit=f"{c['cache_hits'] / max(done, 1):.0%}",
                             failed=c["failed"], refresh=False)
        # screened: programs that cost an evaluation (with hurdles, many only the rung's)
        self.bar.update(c["screened"] - self.bar.n)  # redraws at most every 0.1 s

    def close(self) -> None:
        self.bar.close()

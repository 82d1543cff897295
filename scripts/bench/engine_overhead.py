"""The engine's cost over a target-mode search: seconds per 1,000 evaluations and resident
memory as the evaluations accumulate (goal: both flat -- no cost grows with the run).

A target-mode evaluation takes milliseconds, so what the time per evaluation shows beyond it
is the engine's (proposals, dedup, the run store's commits). The search is configured as
`scripts.research.recovery` configures its variants (target lion, seed 0); `--stop N` ends
the run after N evaluations with the configuration of the full budget (a random search's
population is as large as its budget). No recovery checks run. Ratios compare the run's last
window with its first, so a loaded machine slows both alike.

    .venv/bin/python -m scripts.bench.engine_overhead --variant random --budget 20000 --stop 2000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from optsearch.primitives.reference import load_reference
from optsearch.search.driver import start_run
from scripts.research.recovery import VARIANTS, configure


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def measure(variant: str, budget: int, stop: int, window: int, run_dir: str) -> list[dict]:
    """One row per `window` evaluations: seconds per 1,000 evaluations in it, RSS, state size."""
    config, warm = configure("lion", variant, 0, budget)
    driver = start_run(run_dir, config, load_reference("adamw") if warm else None)
    driver.budget = stop
    rows, mark = [], {"next": window, "t": time.perf_counter()}

    def on_step(d) -> None:
        if d.spent < mark["next"]:
            return
        now = time.perf_counter()
        state = d.store.conn.execute("SELECT length(value) FROM state WHERE name = 'search'")
        rows.append({"evaluations": d.spent, "s_per_1000": (now - mark["t"]) * 1000 / window,
                     "rss_mb": rss_mb(), "state_kb": state.fetchone()[0] / 1024})
        print(json.dumps(rows[-1]), flush=True)
        mark["next"], mark["t"] = mark["next"] + window, now

    driver.on_step = on_step
    try:
        driver.run()
    finally:
        driver.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", choices=VARIANTS, default="random")
    p.add_argument("--budget", type=int, default=3000, help="the configured budget")
    p.add_argument("--stop", type=int, default=None, help="evaluations to run (default: budget)")
    p.add_argument("--window", type=int, default=500)
    args = p.parse_args()
    stop = args.stop or args.budget
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rows = measure(args.variant, args.budget, stop, args.window, os.path.join(tmp, "run"))
        total = time.perf_counter() - t0
    first, last = rows[0], rows[-1]
    growth = (last["rss_mb"] - first["rss_mb"]) * 1000 / (last["evaluations"] - first["evaluations"])
    print(json.dumps({"variant": args.variant, "budget": args.budget, "evaluations": stop,
                      "s_per_1000_mean": total * 1000 / stop,
                      "last_over_first_window": last["s_per_1000"] / first["s_per_1000"],
                      "rss_mb_end": last["rss_mb"], "rss_mb_per_1000": growth,
                      "state_kb_end": last["state_kb"], "load_1min": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()

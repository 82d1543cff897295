"""`optsearch inspect RUN_DIR plot [-o FILE.png] [--json]`: the search's progress.

Two panels against backend evaluations (the budget's unit): best-so-far fitness with the
median of the last P results (P = population size: under regularized evolution the population
is the P most recent children, so this tracks the population's median) and every evaluated
fitness as a dot; below, the cache hit rate over the last P results and since the start.
Default picture: RUN_DIR/progress.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections import deque

from optsearch.cli.errors import UserError
from optsearch.search.config import ConfigError, load
from optsearch.search.store import RunStore

DEFAULT_WINDOW = 64


def add_parser(views) -> None:
    p = views.add_parser("plot", help="fitness and cache hit rate vs evaluations, as PNG")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="PNG to write (default: RUN_DIR/progress.png)")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print the plotted series as one JSON object")
    p.set_defaults(view_func=run)


def window_size(store: RunStore) -> int:
    try:
        return load(store.config_path).search.population_size
    except (ConfigError, OSError):  # an old or hand-edited config: fall back to the default
        return DEFAULT_WINDOW


def progress_series(store: RunStore, window: int | None = None) -> dict:
    """One point per evaluation count, in finish order: the statistics over the results
    finished by then (cache hits included: they join the population too)."""
    window = window or window_size(store)
    rows = store.results_in_finish_order()
    recent, recent_hits = deque(maxlen=window), deque(maxlen=window)
    series = {k: [] for k in ("evaluations", "best", "median", "hit_rate", "cumulative_hit_rate",
                              "evaluated_at", "evaluated_fitness")}
    evaluations = hits = 0
    best = None
    for row in rows:
        hit = row["source"] != "evaluated"  # cache hits and in-flight twins cost no budget
        hits += hit
        evaluations += not hit
        if not hit:
            series["evaluated_at"].append(evaluations)
            series["evaluated_fitness"].append(row["aggregate"])
        best = row["aggregate"] if best is None else max(best, row["aggregate"])
        recent.append(row["aggregate"])
        recent_hits.append(hit)
        point = {"evaluations": evaluations, "best": best, "median": statistics.median(recent),
                 "hit_rate": sum(recent_hits) / len(recent_hits),
                 "cumulative_hit_rate": hits / (evaluations + hits)}
        # Cache hits do not advance the x axis: keep one point per evaluation count (the
        # latest), else the curves draw vertical spikes at every run of hits.
        if series["evaluations"] and series["evaluations"][-1] == evaluations:
            for name in point:
                series[name].pop()
        for name, value in point.items():
            series[name].append(value)
    series["window"] = window
    return series


def progress_figure(series: dict):
    """The two-panel matplotlib figure (Agg backend: works without a display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})
    x, window = series["evaluations"], series["window"]
    top.scatter(series["evaluated_at"], series["evaluated_fitness"], s=5, color="#bbbbbb",
                label="evaluated candidate", zorder=1)
    top.step(x, series["best"], where="post", color="#d62728", label="best so far", zorder=3)
    top.plot(x, series["median"], color="#1f77b4", label=f"median of last {window} results",
             zorder=2)
    _fit_fitness_axis(top, series)
    top.set_ylabel("fitness (AdamW = 1)")
    top.legend(loc="lower right", fontsize=8)
    top.grid(alpha=0.3)
    bottom.plot(x, series["hit_rate"], color="#2ca02c", label=f"last {window} results")
    bottom.plot(x, series["cumulative_hit_rate"], color="#555555", linestyle="--",
                label="since the start")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("cache hit rate")
    bottom.set_xlabel("backend evaluations")
    bottom.legend(loc="upper left", fontsize=8)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _fit_fitness_axis(ax, series: dict) -> None:
    """Scale to the median and best curves: failures score 0 and would squash them."""
    values = series["median"] + series["best"]
    if not values:
        return
    low, high = min(values), max(values)
    pad = 0.08 * (high - low) or 0.05
    ax.set_ylim(low - pad, high + pad)


def save_progress_plot(store: RunStore, path_or_file) -> dict:
    """Write the PNG; returns the series it shows."""
    import matplotlib.pyplot as plt

    series = progress_series(store)
    fig = progress_figure(series)
    fig.savefig(path_or_file, format="png", dpi=100)
    plt.close(fig)
    return series


def run(store: RunStore, args) -> int:
    path = args.output or os.path.join(store.run_dir, "progress.png")
    try:
        series = save_progress_plot(store, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    if args.json:
        print(json.dumps({"output": path, **series}))
    else:
        final = (f"; best {series['best'][-1]:.4f} after {series['evaluations'][-1]} "
                 "evaluations") if series["best"] else "; no results yet"
        print(f"wrote {path}{final}")
    return 0

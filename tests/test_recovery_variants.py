"""The recovery benchmark's search variants (scripts/research/recovery.py)."""

import sqlite3

from optsearch.search.config import Config
from optsearch.search.driver import start_run
from scripts.research.recovery import configure


def test_the_random_variant_proposes_only_random_programs(tmp_path):
    """Rule: `random` is a pure random search, every proposal a fresh random program. Its
    initial population never fills: duplicates and cache hits do not count in the budget, so
    P = budget + 1 initial programs ran out and mutations followed (~5,400 of 20,000
    evaluations). And it never restarts: a restart refills the population with copies of the
    best, after which every proposal is a mutation."""
    config, warm = configure("lion", "random", seed=0, budget=40)
    assert not warm and config.search.restart_plateau == 0
    assert config.search.population_size > config.search.budget
    driver = start_run(str(tmp_path / "run"), config, None)
    try:
        driver.run()
    finally:
        driver.close()
    with sqlite3.connect(tmp_path / "run" / "run.sqlite") as db:
        ops = {op for (op,) in db.execute("select distinct mutation from candidates")}
    assert ops == {"init"}


def test_the_islands_variant_runs_independent_populations():
    """Rule: `islands` is the default search split into ISLANDS populations (a multi-start);
    `restart_initial` restarts a plateaued population from the warm start; `long_stream`
    searches on a longer recorded stream."""
    from scripts.research.recovery import ISLANDS, LONG_STREAM_STEPS
    islands, _ = configure("lion", "islands", seed=0, budget=40)
    assert islands.search.islands == ISLANDS > 1
    assert islands.search.restart_from == "best"
    restart, _ = configure("lion", "restart_initial", seed=0, budget=40)
    assert restart.search.restart_from == "initial" and restart.search.islands == 1
    long, _ = configure("lion", "long_stream", seed=0, budget=40)
    assert long.evaluation.target_steps == LONG_STREAM_STEPS > Config().evaluation.target_steps

"""Helpers shared by the tests: small fake-backend searches and the raw candidates table.
(Fixtures live in conftest.py; plain functions here, imported as `from support import ...`.)"""

import os
import sqlite3

from optsearch.search.config import Config

# Every column a run writes per candidate: what "nothing lost, nothing changed" compares.
CANDIDATE_COLUMNS = ("id, island, epoch, parent_id, mutation, detail, program, structural_hash, "
                     "fingerprint, status, source, duplicate_of, fitness_json, aggregate, worker")


def small_config(budget=40, seed=0, **search) -> Config:
    """A search small enough for a test (P=8, T=3) on the fake backend, which scores a
    program without training."""
    config = Config()
    config.search.population_size, config.search.tournament_size = 8, 3
    config.search.budget, config.search.seed = budget, seed
    for key, value in search.items():
        setattr(config.search, key, value)
    config.evaluation.backend = "fake"
    return config.validate()


def small_config_toml(budget=60, seed=11, evaluation="") -> str:
    """The same small search as a TOML file's text, for the command line."""
    return (f"[search]\npopulation_size = 8\ntournament_size = 3\nbudget = {budget}\n"
            f"seed = {seed}\n\n[evaluation]\nbackend = \"fake\"\n{evaluation}")


def candidate_rows(run_dir, where="1"):
    """The candidates table as stored on disk, read independently of the run store (so a test
    of the store does not trust the store), read-only."""
    uri = f"file:{os.path.join(run_dir, 'run.sqlite')}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        return conn.execute(f"SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE {where} "
                            f"ORDER BY id").fetchall()

"""Helpers shared by the tests: small fake-backend searches, the raw candidates table, stop and
kill helpers for resume tests, and what recognition must return for each shipped program.
(Fixtures live in conftest.py; plain functions here, imported as `from support import ...`.)"""

import os
import sqlite3

import pytest

from optsearch.search.config import Config
from optsearch.search.driver import resume_run

# Every column a run writes per candidate: what "nothing lost, nothing changed" compares.
CANDIDATE_COLUMNS = ("id, island, epoch, parent_id, mutation, detail, program, structural_hash, "
                     "fingerprint, status, source, duplicate_of, fitness_json, aggregate, worker")


def small_config(budget=40, seed=0, evaluation=None, **search) -> Config:
    """A search small enough for a test (P=8, T=3) on the fake backend, which scores a
    program without training; `evaluation` and `search` override config keys."""
    config = Config()
    config.search.population_size, config.search.tournament_size = 8, 3
    config.search.budget, config.search.seed = budget, seed
    for key, value in search.items():
        setattr(config.search, key, value)
    config.evaluation.backend = "fake"
    for key, value in (evaluation or {}).items():
        setattr(config.evaluation, key, value)
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


def interrupt_and_resume(driver, path, stops, snapshot):
    """Stop the run at `path` after each number of committed steps in `stops` (Ctrl-C in the
    step callback), check that what was committed survives (`snapshot(path)` is unchanged by
    the resume) and return the resumed driver, to be run to its end."""
    for stop in stops:
        steps = []

        def hook(d, steps=steps, stop=stop):
            steps.append(1)
            if len(steps) == stop:
                raise KeyboardInterrupt

        driver.on_step = hook
        with pytest.raises(KeyboardInterrupt):
            driver.run()
        kept = snapshot(path)
        driver.store.close()
        driver = resume_run(path)
        assert snapshot(path) == kept  # nothing committed was lost
    return driver


def kill_inside_a_transaction(driver, kill_at: int):
    """Run until the `kill_at`-th state save, then die inside that transaction (as a kill -9
    would: nothing of the step is committed); the store is closed, ready for resume_run."""
    save, calls = driver.store.save_state, []

    def dying_save(name, value):
        calls.append(name)
        if len(calls) == kill_at:
            raise SystemExit("killed inside a transaction")
        save(name, value)

    driver.store.save_state = dying_save
    with pytest.raises(SystemExit):
        driver.run()
    driver.store.close()


# reference name -> (recognised name, hyperparameters of the shipped file)
REFERENCES = {  # what recognition must return for each shipped file
    "lion": ("Lion", {"beta1": 0.9, "beta2": 0.99, "weight_decay": 0.1, "lr": 1e-4}),
    "signum": ("Signum", {"beta": 0.9, "weight_decay": 0.1, "lr": 1e-4}),
    "sgdm": ("SGD-M", {"momentum": 0.9, "lr": 0.01}),
    "adamw": ("AdamW", {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01, "lr": 1e-3}),
    "adam": ("Adam", {"beta1": 0.9, "beta2": 0.999, "lr": 1e-3}),
    "rmsprop": ("RMSProp", {"alpha": 0.99, "lr": 0.01}),
    "adagrad": ("AdaGrad", {"lr": 0.01}),
    "adabelief": ("AdaBelief", {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01,
                                "lr": 1e-3}),
}

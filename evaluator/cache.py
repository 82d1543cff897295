"""FitnessCache: sqlite table of Fitness keyed by (program key, suite version).

A program has two keys (`program_keys`): its structural hash, which catches renamed,
reordered and dead-code variants, and its behavioural fingerprint, which also catches
algebraic equivalents (`a*b` vs `b*a` after a rewrite, `m/sqrt(m*m)` vs `sign(m)`). A lookup
tries both; a store writes both. The version column is `suites.evaluation_version(suite,
seeds)`: a changed task config, dataset or seed list never serves a stale fitness.

Only deterministic outcomes are stored (`Fitness.cacheable`): a timeout or a worker crash
says nothing about the program and must be retried later.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from optsearch.evaluator.fitness import Fitness
from optsearch.primitives.hashing import fingerprint, structural_hash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fitness (
    key TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    status TEXT NOT NULL,
    aggregate REAL NOT NULL,
    fitness TEXT NOT NULL,
    PRIMARY KEY (key, suite_version)
)"""


def program_keys(program) -> tuple[str, str]:
    return ("s:" + structural_hash(program), "f:" + fingerprint(program))


class FitnessCache:
    def __init__(self, path):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path))
        self._db.execute("PRAGMA journal_mode=WAL")   # readers (inspect) never block the search
        self._db.execute(_SCHEMA)
        self._db.commit()
        self.hits = self.misses = 0

    def _row(self, key: str, suite_version: str):
        return self._db.execute("SELECT fitness FROM fitness WHERE key = ? AND suite_version = ?",
                                (key, suite_version)).fetchone()

    def get(self, key: str, suite_version: str) -> Fitness | None:
        return self.lookup((key,), suite_version)

    def put(self, key: str, suite_version: str, fitness: Fitness) -> bool:
        """Store a deterministic outcome; returns False (and stores nothing) otherwise."""
        if not fitness.cacheable:
            return False
        self._db.execute("INSERT OR REPLACE INTO fitness VALUES (?, ?, ?, ?, ?)",
                         (key, suite_version, fitness.status, fitness.aggregate,
                          json.dumps(fitness.to_dict())))
        self._db.commit()
        return True

    def lookup(self, keys, suite_version: str) -> Fitness | None:
        """First hit among a program's keys (counts one hit or one miss)."""
        for key in keys:
            row = self._row(key, suite_version)
            if row is not None:
                self.hits += 1
                return Fitness.from_dict(json.loads(row[0]))
        self.misses += 1
        return None

    def store(self, keys, suite_version: str, fitness: Fitness) -> bool:
        return all(self.put(key, suite_version, fitness) for key in keys)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM fitness").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

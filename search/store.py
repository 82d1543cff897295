"""The run store: `runs/<id>/run.sqlite` holds every candidate, the fitness cache and the
search state; `config.toml` is the configuration snapshot; `best.py` the best program so far.

sqlite in WAL mode with one transaction per search step (a proposal or a result, together
with the search-state snapshot it produced): a `kill -9` at any moment leaves the database at
the last completed step, so no evaluated candidate is lost and `resume` continues from a
consistent state.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager

from optsearch.evaluator.fitness import Fitness

DB_NAME = "run.sqlite"
CONFIG_NAME = "config.toml"
BEST_NAME = "best.py"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    island INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    parent_id INTEGER,
    mutation TEXT NOT NULL,          -- init | insert | delete | modify | replace
    detail TEXT NOT NULL,
    program TEXT NOT NULL,
    structural_hash TEXT NOT NULL,
    fingerprint TEXT,
    status TEXT NOT NULL,            -- pending | waiting | ok | diverged | timeout | error | ...
    source TEXT,                     -- evaluated | cache | twin (waited for an in-flight twin)
    duplicate_of INTEGER,            -- the candidate whose fitness a cache hit or twin took
    fitness_json TEXT,
    aggregate REAL,
    proposed_at REAL NOT NULL,
    finished_at REAL,
    cost_s REAL,
    worker TEXT
);
CREATE INDEX IF NOT EXISTS candidates_status ON candidates(status);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT NOT NULL,               -- "h:" structural hash or "f:" fingerprint
    suite_version TEXT NOT NULL,
    status TEXT NOT NULL,
    aggregate REAL,
    fitness_json TEXT NOT NULL,
    source_id INTEGER,
    PRIMARY KEY (key, suite_version)
);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

IN_FLIGHT = ("pending", "waiting")


class RunStore:
    def __init__(self, run_dir: str, conn: sqlite3.Connection):
        self.run_dir = run_dir
        self.conn = conn

    @classmethod
    def create(cls, run_dir: str, config_toml: str) -> RunStore:
        os.makedirs(run_dir, exist_ok=True)
        if os.path.exists(os.path.join(run_dir, DB_NAME)):
            raise FileExistsError(f"{run_dir} already holds a run")
        _write_atomic(os.path.join(run_dir, CONFIG_NAME), config_toml)
        return cls._connect(run_dir)

    @classmethod
    def open(cls, run_dir: str, readonly: bool = False) -> RunStore:
        """An existing run; `readonly` for viewers, which never block or alter a live search."""
        path = os.path.join(run_dir, DB_NAME)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{run_dir} is not a run directory (no {DB_NAME})")
        if not readonly:
            return cls._connect(run_dir)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return cls(run_dir, conn)

    @classmethod
    def _connect(cls, run_dir: str) -> RunStore:
        conn = sqlite3.connect(os.path.join(run_dir, DB_NAME), isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a killed process (the WAL is in the OS cache); only a
        # power loss could drop the last transactions, and evaluations are idempotent.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        return cls(run_dir, conn)

    @property
    def config_path(self) -> str:
        return os.path.join(self.run_dir, CONFIG_NAME)

    @contextmanager
    def transaction(self):
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def insert_candidate(self, **row) -> None:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.conn.execute(f"INSERT INTO candidates ({names}) VALUES ({marks})", tuple(row.values()))

    def update_candidate(self, candidate_id: int, **fields) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(f"UPDATE candidates SET {sets} WHERE id = ?",
                          (*fields.values(), candidate_id))

    def candidate(self, candidate_id: int) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM candidates WHERE id = ?",
                                 (candidate_id,)).fetchone()

    def candidates(self, where: str = "1", params: tuple = (), order: str = "id",
                   limit: int | None = None) -> list[sqlite3.Row]:
        """Rows matching `where` (SQL written by this package, never user text)."""
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        return self.conn.execute(f"SELECT * FROM candidates WHERE {where} ORDER BY {order}{tail}",
                                 params).fetchall()

    def cache_get(self, key: str, suite_version: str) -> tuple[Fitness, int | None] | None:
        """The cached fitness and the candidate it was evaluated for (None: another run's)."""
        row = self.conn.execute("SELECT * FROM cache WHERE key = ? AND suite_version = ?",
                                (key, suite_version)).fetchone()
        if row is None:
            return None
        return Fitness.from_dict(json.loads(row["fitness_json"])), row["source_id"]

    def cache_put(self, key: str, suite_version: str, fitness: Fitness,
                  source_id: int | None) -> None:
        self.conn.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?, ?, ?)",
                          (key, suite_version, fitness.status, fitness.aggregate,
                           json.dumps(fitness.to_dict()), source_id))

    def save_state(self, name: str, value) -> None:
        self.conn.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (name, json.dumps(value)))

    def load_state(self, name: str, default=None):
        row = self.conn.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def write_best(self, program_text: str, header: str) -> None:
        _write_atomic(os.path.join(self.run_dir, BEST_NAME), header + program_text)

    def close(self) -> None:
        self.conn.close()


class StoreCache:
    """The fitness cache of one run, keyed by (key, suite version). The driver only needs
    `get(key)` and `put(key, fitness, source_id)`, so a shared cross-run cache can stand in for it."""

    def __init__(self, store: RunStore, suite_version: str):
        self.store, self.suite_version = store, suite_version

    def get(self, key: str) -> tuple[Fitness, int | None] | None:
        return self.store.cache_get(key, self.suite_version)

    def put(self, key: str, fitness: Fitness, source_id: int | None) -> None:
        self.store.cache_put(key, self.suite_version, fitness, source_id)


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)

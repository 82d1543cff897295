"""The run store: `runs/<id>/run.sqlite` holds every candidate, the fitness cache, the search
state and the funnel's results; `config.toml` is the configuration snapshot; `best.py` the
best program so far.

This module is the only code that reads or writes the run database: every query is a method
here, so a schema change has one place to go and every tool agrees on what a run holds --
in particular on its winner (`RunStore.winner`).

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
from dataclasses import dataclass

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
                                     -- | stopped (at the rung's hurdle: no fitness, see rungs)
    source TEXT,                     -- evaluated | cache | twin (waited for an in-flight twin)
                                     -- | rung (stopped by its own rung evaluation)
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
-- The islands' populations, one row per living member: a step adds and drops rows (a tell
-- adds one member and ages out one), so it costs the same whatever the population size.
CREATE TABLE IF NOT EXISTS members (
    island INTEGER NOT NULL,
    joined INTEGER NOT NULL,         -- the member's number on its island (join order)
    candidate_id INTEGER NOT NULL,
    PRIMARY KEY (island, joined)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS funnel (
    candidate_id INTEGER NOT NULL,
    stage INTEGER NOT NULL,
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    aggregate REAL,
    stderr REAL,
    passed INTEGER NOT NULL,
    fitness_json TEXT NOT NULL,
    PRIMARY KEY (candidate_id, suite_version)
);
-- Rung results (search.hurdles): a short training run's score, never a fitness. They live in
-- their own table so that nothing reading candidates.aggregate can take one for a fitness.
CREATE TABLE IF NOT EXISTS rungs (
    candidate_id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,            -- the rung's outcome: ok | diverged | timeout | error | ...
    aggregate REAL,                  -- rung score, against AdamW at the rung's length
    fitness_json TEXT,
    hurdle REAL,                     -- what it had to reach (NULL: no hurdle, e.g. an init)
    passed INTEGER NOT NULL,         -- 1: went on to the full evaluation
    source TEXT NOT NULL,            -- evaluated | cache
    duplicate_of INTEGER,            -- the candidate whose cached rung result it took
    finished_at REAL NOT NULL,
    cost_s REAL,
    worker TEXT
);
"""

IN_FLIGHT = ("pending", "waiting")
# Rows with a fitness (failures score 0.0), and the rows the funnel may take: programs that
# finished and were evaluated themselves (a cache hit repeats a program already ranked).
FINISHED = "aggregate IS NOT NULL"
EVALUATED_OK = "status = 'ok' AND source = 'evaluated'"
# A damaged file or one that is not a run database; callers catch it without knowing sqlite.
DatabaseError = sqlite3.DatabaseError


@dataclass(frozen=True)
class Winner:
    """The program a run hands on (to simplify, export, generalisation): the best of the last
    funnel stage the funnel reached, else the best program the search evaluated."""
    candidate_id: int
    program: str
    stage: int | None  # the funnel stage it won; None when the funnel has no result

    def describe(self) -> str:
        if self.stage is None:
            return f"candidate {self.candidate_id}, best search fitness"
        return f"candidate {self.candidate_id}, best of funnel stage {self.stage}"


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

    def _candidates(self, where: str, order: str = "id", limit: int | None = None) -> list:
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        return self.conn.execute(
            f"SELECT * FROM candidates WHERE {where} ORDER BY {order}{tail}").fetchall()

    def in_flight(self) -> list[sqlite3.Row]:
        """Candidates proposed but not finished when the run stopped, in proposal order."""
        return self._candidates("status IN ('pending', 'waiting')")

    def best_candidate(self) -> sqlite3.Row | None:
        """The best finished program by search fitness (ties: the earliest)."""
        rows = self._candidates("status = 'ok'", order="aggregate DESC, id", limit=1)
        return rows[0] if rows else None

    def ranked(self, distinct: bool = True, evaluated_only: bool = False,
               k: int | None = None) -> list[sqlite3.Row]:
        """Finished candidates, best first (ties: the earliest); at most `k`.

        distinct: one row per program, keyed by structural hash and by behavioural
        fingerprint (programs that differ only in a constant a `sign` erases are the same
        optimizer) -- what funnel selection and `inspect list` count as distinct.
        evaluated_only: only programs that finished ok and were evaluated themselves."""
        rows = self._candidates(EVALUATED_OK if evaluated_only else FINISHED,
                                order="aggregate DESC, id")
        if not distinct:
            return rows[:k]
        chosen, seen = [], set()
        for row in rows:
            if len(chosen) == k:
                break
            keys = identity_keys(row)
            if not keys & seen:
                seen |= keys
                chosen.append(row)
        return chosen

    def times_seen(self, row) -> int:
        """How many candidates are this program: same fingerprint, or same hash without one."""
        if row["fingerprint"]:
            where, key = "fingerprint = ?", row["fingerprint"]
        else:
            where, key = "structural_hash = ?", row["structural_hash"]
        return self.conn.execute(f"SELECT COUNT(*) FROM candidates WHERE {where}",
                                 (key,)).fetchone()[0]

    def results_in_finish_order(self) -> list[sqlite3.Row]:
        """(id, source, aggregate) of every finished candidate, in the order they finished."""
        return self.conn.execute(
            "SELECT id, source, aggregate FROM candidates WHERE finished_at IS NOT NULL "
            "AND aggregate IS NOT NULL ORDER BY finished_at, id").fetchall()

    def ok_results(self) -> list[sqlite3.Row]:
        """Candidates that finished successfully, in proposal order."""
        return self._candidates("status = 'ok' AND finished_at IS NOT NULL")

    def trained_programs(self) -> list[sqlite3.Row]:
        """(structural_hash, program, source, status) of every candidate the backend trained:
        in full (source 'evaluated') or only on its rung (source 'rung'), in proposal order."""
        return self.conn.execute(
            "SELECT structural_hash, program, source, status FROM candidates "
            "WHERE source IN ('evaluated', 'rung') ORDER BY id").fetchall()

    def evaluation_times(self) -> list[float]:
        """When each evaluation (not a cache hit) finished, earliest first."""
        rows = self.conn.execute(
            "SELECT finished_at FROM candidates WHERE source = 'evaluated' "
            "AND finished_at IS NOT NULL ORDER BY finished_at").fetchall()
        return [r[0] for r in rows]

    def insert_rung(self, **row) -> None:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.conn.execute(f"INSERT INTO rungs ({names}) VALUES ({marks})", tuple(row.values()))

    def rung(self, candidate_id: int) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM rungs WHERE candidate_id = ?",
                                 (candidate_id,)).fetchone()

    def evaluated_rungs(self) -> list[sqlite3.Row]:
        """Every rung the backend evaluated (not a cache hit), by candidate id:
        (candidate_id, fitness_json) of the rung with the candidate's full (aggregate, source)."""
        return self.conn.execute(
            "SELECT r.candidate_id, r.fitness_json, c.aggregate, c.source FROM rungs r "
            "JOIN candidates c ON c.id = r.candidate_id WHERE r.source = 'evaluated' "
            "ORDER BY r.candidate_id").fetchall()

    def cache_keys(self) -> set[str]:
        """Every key in the fitness cache, whatever the suite version."""
        return {row[0] for row in self.conn.execute("SELECT DISTINCT key FROM cache")}

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

    # -- the populations ----------------------------------------------------------------
    def add_members(self, island: int, members: list[tuple[int, int]]) -> None:
        """(number, candidate id) of members that joined the island."""
        self.conn.executemany("INSERT INTO members VALUES (?, ?, ?)",
                              [(island, n, cid) for n, cid in members])

    def drop_members(self, island: int, first: int) -> None:
        """The island's members numbered below `first` died (aged out, or a restart)."""
        self.conn.execute("DELETE FROM members WHERE island = ? AND joined < ?", (island, first))

    def populations(self, state: dict) -> list[list[int]]:
        """Each island's members in a saved search state (candidate ids, oldest first)."""
        return [island["population"] if "population" in island  # runs from before `members`
                else [row[0] for row in self.conn.execute(
                    "SELECT candidate_id FROM members WHERE island = ? ORDER BY joined", (i,))]
                for i, island in enumerate(state.get("islands", []))]

    # -- the funnel --------------------------------------------------------------------
    def funnel_results(self, suite_version: str) -> list[sqlite3.Row]:
        """Stored funnel results on one suite version ([] if the funnel never ran)."""
        if not self._has_table("funnel"):
            return []
        return self.conn.execute("SELECT * FROM funnel WHERE suite_version = ?",
                                 (suite_version,)).fetchall()

    def record_funnel_result(self, candidate_id: int, stage: int, suite: str,
                             suite_version: str, aggregate: float, stderr: float, passed: bool,
                             fitness_json: str) -> None:
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO funnel VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (candidate_id, stage, suite, suite_version, aggregate, stderr,
                               int(passed), fitness_json))

    def record_funnel_round(self, stages: list[tuple[str, list[int]]]) -> None:
        """What the latest funnel run compared: per stage, its suite version and candidate
        ids best first. A re-run with other scales or top-k replaces it; results of earlier
        runs stay in the table (they are reused) but no longer decide the winner."""
        with self.transaction():
            self.save_state("funnel", [{"suite_version": v, "candidates": ids}
                                       for v, ids in stages])

    def funnel_table(self) -> list[sqlite3.Row]:
        """Every stored funnel result, best first within each stage ([] if none)."""
        if not self._has_table("funnel"):
            return []
        return self.conn.execute("SELECT * FROM funnel ORDER BY stage, aggregate DESC").fetchall()

    def winner(self) -> Winner | None:
        """The run's winner (see `Winner`); None if no program finished successfully."""
        found = self._funnel_winner()
        if found is not None:
            return found
        row = self.best_candidate()
        return None if row is None else Winner(row["id"], row["program"], None)

    def _funnel_winner(self) -> Winner | None:
        rounds = self.load_state("funnel")
        if rounds is None:  # a run funneled before rounds were recorded: its deepest stage
            if not self._has_table("funnel"):
                return None
            row = self.conn.execute(
                "SELECT f.candidate_id, f.stage, c.program FROM funnel f "
                "JOIN candidates c ON c.id = f.candidate_id "
                "ORDER BY f.stage DESC, f.aggregate DESC, f.candidate_id LIMIT 1").fetchone()
            return None if row is None else Winner(row[0], row[2], row[1])
        for stage in range(len(rounds), 0, -1):
            ids = rounds[stage - 1]["candidates"]
            if ids:
                return Winner(ids[0], self.candidate(ids[0])["program"], stage)
        return None

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (name,)).fetchone() is not None

    # -- files ---------------------------------------------------------------------------
    def write_best(self, program_text: str, header: str) -> None:
        _write_atomic(os.path.join(self.run_dir, BEST_NAME), header + program_text)

    def close(self) -> None:
        self.conn.close()


def identity_keys(row) -> set:
    """What makes two candidates the same program: structural hash, behavioural fingerprint."""
    keys = {("h", row["structural_hash"])}
    if row["fingerprint"]:
        keys.add(("f", row["fingerprint"]))
    return keys


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

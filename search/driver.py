"""The search driver: keeps `backend.capacity` evaluations in flight, dedups before dispatch,
feeds results back to the islands in finish order, and commits every step to the run store.

Each step -- one proposal, or one result with the twins waiting on it -- is one transaction
that also saves the search state (RNG, populations, counters); a population is saved as the
members that joined and died since the last commit (table `members`), so a step costs the same
whatever the population size. From any committed state the
driver's next action is fixed: re-submit the in-flight candidates in id order, refill, poll.
So with a backend that finishes jobs in submission order (serial) and a fixed seed, a run is
exactly reproducible, also when it is killed and resumed at any point.

With hurdles on (search.hurdles), a candidate is in flight twice: first on the rung, then,
if it clears the hurdle, in full. A rung result is committed like any step (table `rungs`);
the search state lists the jobs in flight in submission order, so a resume re-submits each
candidate to the right fidelity and in the same order. A rung job has id `-1 - candidate id`,
so a late rung result can never be taken for the full one.

With constant fitting on (target mode, `search.refine_every`), the driver fits the constants of
the best program every `refine_every` evaluations (search.constants), in process, and proposes
the fitted program as the best's child (op "refine"); the fit's evaluations count in the
budget. A fit is deterministic, so a resume that lost an uncommitted fit repeats it exactly.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from optsearch.evaluator.fitness import Fitness
from optsearch.evaluator.lr_sweep import with_lr_factor
from optsearch.evaluator.suites import evaluation_version
from optsearch.primitives.hashing import fingerprint, structural_hash
from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.primitives.program import Program
from optsearch.search.backend import backend_for, open_shared_cache
from optsearch.search.config import Config, load, to_toml
from optsearch.search.constants import fit_constants
from optsearch.search.evolution import Individual, Proposal, RegularizedEvolution, selection_value
from optsearch.search.hurdles import clears, population_hurdle
from optsearch.search.mutation import Mutator
from optsearch.search.store import DB_NAME, RunStore, StoreCache
from optsearch.search.warm_start import lr_sweep, parse_factors

POLL_S = 0.5
# screened: candidates that cost a backend evaluation (rung, full or both; the budget counts
# these), evaluated: full evaluations, rung_evaluated: rung evaluations, stopped: candidates
# stopped at the hurdle; dup_structural / dup_fingerprint: candidates that cost nothing
# because an earlier or in-flight one had the same structural hash / the same fingerprint.
COUNTERS = ("proposed", "invalid", "unchanged", "cache_hits", "evaluated", "failed", "restarts",
            "screened", "rung_evaluated", "rung_failed", "stopped", "dup_structural",
            "dup_fingerprint", "refined", "refine_evaluations")
KEY_KINDS = {"s:": "dup_structural", "f:": "dup_fingerprint"}


@dataclass(frozen=True)
class Candidate:
    id: int
    island: int
    epoch: int
    op: str
    program: Program
    text: str
    structural_hash: str
    fingerprint: str | None

    def cache_keys(self) -> list[str]:
        return ["s:" + self.structural_hash] + (["f:" + self.fingerprint] if self.fingerprint else [])


def rung_job(candidate_id: int) -> int:
    return -1 - candidate_id


def _fingerprint(program: Program) -> str | None:
    try:
        return fingerprint(program)
    except Exception:  # noqa: BLE001 -- a fingerprint is an optimisation, never a failure
        return None


class Driver:
    def __init__(self, store: RunStore, config: Config, backend, initial: Program | None):
        s = config.search
        self.store, self.config, self.backend = store, config, backend
        self.budget = s.budget
        self.rng = np.random.default_rng(s.seed)
        mutator = Mutator(config.mutation)
        initials = lr_sweep(initial, parse_factors(s.init_lr_factors)) if initial else None
        self.islands = [RegularizedEvolution(s.population_size, s.tournament_size, mutator,
                                             initials, s.random_init_statements)
                        for _ in range(s.islands)]
        self.cache = StoreCache(store, evaluation_version(backend.suite, backend.seeds,
                                                          getattr(backend, "lr_sweep", 1)))
        self.shared_cache = open_shared_cache(config.evaluation)
        self.hurdles = config.evaluation.hurdles
        self.rung_cache = (StoreCache(store, evaluation_version(backend.rung_suite, backend.seeds,
                                                                getattr(backend, "lr_sweep", 1)))
                           if self.hurdles else None)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.next_island = self.next_id = 0
        self.best: Individual | None = None
        self.pending: dict[int, Candidate] = {}  # in flight, in submission order
        self.jobs: list[int] = []  # job ids in flight, in submission order (rung: negative)
        self.rung_scores: dict[int, float] = {}  # pending candidates that cleared the hurdle
        self.stopped_in_a_row = [0] * len(self.islands)  # per island, for hurdle_patience
        self.inflight_keys: dict[str, int] = {}
        self.waiting: dict[int, list[Candidate]] = {}  # in-flight id -> its twins
        self.outbox: list[tuple[int, str, bool]] = []  # jobs to submit once the step commits
        self.on_step = lambda driver: None  # progress display hook
        self._best_changed = False
        self.next_refine = config.search.refine_every  # spent evaluations before the next fit
        self.refined: set[str] = set()  # structural hashes whose constants were fitted
        # per island, (first_joined, joined) as last committed: what the table `members` holds
        self.saved_members = [(0, 0)] * len(self.islands)

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        self._refill()
        while self.pending:
            for job_id, fitness, worker in self.backend.poll(POLL_S):
                if job_id not in self.jobs:
                    continue  # a stray duplicate of a re-dispatched job
                self.jobs.remove(job_id)
                if job_id < 0:  # rung_job is its own inverse
                    self._finish_rung(self.pending[rung_job(job_id)], fitness, worker)
                else:
                    self._finish(self.pending.pop(job_id), fitness, worker)
                self._refill()

    @property
    def spent(self) -> int:
        """Evaluations the budget counts: screened candidates and constant-fitting calls."""
        return self.counters["screened"] + self.counters["refine_evaluations"]

    def _may_propose(self) -> bool:
        c, cap = self.counters, self.budget * self.config.search.max_proposals_per_eval
        return self.spent + len(self.pending) < self.budget and c["proposed"] < cap

    def _refill(self) -> None:
        while len(self.pending) < self.backend.capacity and self._may_propose():
            island, proposal = self._refine()
            if proposal is None:
                island, proposal = self._ask()
            if proposal is None:
                return  # nothing to mutate until an initial program comes back
            self._dispatch(island, proposal)

    def _refine(self) -> tuple[int, Proposal | None]:
        """The best program with its constants fitted, when a fit is due and improves it."""
        s, best = self.config.search, self.best
        if not s.refine_every or best is None or self.spent < self.next_refine:
            return -1, None
        self.next_refine = self.spent + s.refine_every
        allowed = min(s.refine_evaluations, self.budget - self.spent - len(self.pending) - 1)
        if best.structural_hash in self.refined or allowed < 2:
            return -1, None
        self.refined.add(best.structural_hash)
        fit = fit_constants(best.program, self._score, allowed)
        self.counters["refined"] += 1
        self.counters["refine_evaluations"] += fit.evaluations
        if not fit.improved:
            return -1, None
        island = next((i for i, isl in enumerate(self.islands)
                       if any(ind.id == best.id for ind in isl.population)), self.next_island)
        detail = (f"refine {fit.constants} constants in {fit.evaluations} evaluations: "
                  f"fitness {fit.start_fitness:.6g} -> {fit.fitness:.6g}")
        return island, Proposal(fit.program, best.id, "refine", detail, None,
                                self.islands[island].epoch)

    def _score(self, program: Program) -> float:
        fitness = self.backend.evaluate_job(format_program(program), False)
        return selection_value(fitness.aggregate) if fitness.ok else -float("inf")

    def _ask(self) -> tuple[int, Proposal | None]:
        n = len(self.islands)
        for k in range(n):  # round-robin over islands; skip one that is waiting for its init
            i = (self.next_island + k) % n
            proposal = self.islands[i].ask(self.rng)
            if proposal is not None:
                self.next_island = (i + 1) % n
                return i, proposal
        return -1, None

    # -- dedup and dispatch --------------------------------------------------------------
    def _dispatch(self, island: int, p: Proposal) -> None:
        c = self.counters
        c["proposed"] += 1 + p.invalid + p.unchanged
        c["invalid"] += p.invalid
        c["unchanged"] += p.unchanged
        cand = Candidate(self.next_id, island, p.epoch, p.op, p.program, format_program(p.program),
                         p.structural_hash or structural_hash(p.program), _fingerprint(p.program))
        self.next_id += 1
        # Structural hash first (cheap, exact), then behaviour: both against the persistent
        # cache, then against jobs in flight (a twin waits instead of being evaluated twice).
        # hits are (fitness, candidate it was evaluated for)
        key, hit = _first(cand.cache_keys(), self.cache.get)
        if hit is None:
            key, hit = None, self._shared_lookup(cand)
        twin_key, twin = _first(cand.cache_keys(), self.inflight_keys.get)
        rung_key, rung_hit = None, None
        if hit is None and twin is None and self.hurdles:
            rung_key, rung_hit = _first(cand.cache_keys(), self.rung_cache.get)
        with self._step():
            self.store.insert_candidate(
                id=cand.id, island=island, epoch=p.epoch, parent_id=p.parent_id, mutation=p.op,
                detail=p.detail, program=cand.text, structural_hash=cand.structural_hash,
                fingerprint=cand.fingerprint, status="pending", proposed_at=time.time())
            self._count_duplicate(key or twin_key)
            if hit is not None:
                self._conclude(cand, hit[0], "cache", duplicate_of=hit[1])
            elif twin is not None:
                self.waiting.setdefault(twin, []).append(cand)
                self.store.update_candidate(cand.id, status="waiting", duplicate_of=twin)
            else:
                self._add_pending(cand)
                if rung_hit is not None:
                    self._judge(cand, rung_hit[0], "cache", duplicate_of=rung_hit[1])
                    if cand.id not in self.pending:  # stopped by an earlier twin's rung result
                        self._count_duplicate(rung_key)
                elif self.hurdles:
                    self._submit(rung_job(cand.id), cand.text, rung=True)
                else:
                    self._submit(cand.id, cand.text)

    def _submit(self, job_id: int, text: str, rung: bool = False) -> None:
        """Queue a job; it goes to the backend once the current step has committed."""
        self.jobs.append(job_id)
        self.outbox.append((job_id, text, rung))

    def _count_duplicate(self, key: str | None) -> None:
        if key is not None:
            self.counters[KEY_KINDS[key[:2]]] += 1

    def _shared_lookup(self, cand: Candidate) -> tuple[Fitness, None] | None:
        if self.shared_cache is None:
            return None
        fitness = self.shared_cache.lookup(cand.cache_keys(), self.cache.suite_version)
        if fitness is None:
            return None
        for key in cand.cache_keys():  # the run's own cache keeps everything the run used
            self.cache.put(key, fitness, None)
        return fitness, None

    def _add_pending(self, cand: Candidate) -> None:
        self.pending[cand.id] = cand
        for key in cand.cache_keys():
            self.inflight_keys.setdefault(key, cand.id)

    def _release_keys(self, cand: Candidate) -> None:
        for key in cand.cache_keys():
            if self.inflight_keys.get(key) == cand.id:
                del self.inflight_keys[key]

    # -- results -------------------------------------------------------------------------
    def _finish_rung(self, cand: Candidate, fitness: Fitness, worker: str) -> None:
        with self._step():
            self.counters["rung_evaluated"] += 1
            self.counters["rung_failed"] += not fitness.ok
            if fitness.cacheable:
                for key in cand.cache_keys():
                    self.rung_cache.put(key, fitness, cand.id)
            self._judge(cand, fitness, "evaluated", worker=worker, cost_s=fitness.cost_s)

    def _judge(self, cand: Candidate, rung: Fitness, source: str,
               duplicate_of: int | None = None, worker: str | None = None,
               cost_s: float | None = None) -> None:
        """Hold a rung result against its island's hurdle: on to the full evaluation, or stop.
        Initial programs always go on (the population starts from them)."""
        is_init = cand.op == "init"
        hurdle = None if is_init else population_hurdle(
            self.islands[cand.island].population, self.config.evaluation.hurdle_quantile)
        passed = (is_init or clears(rung.status, rung.aggregate, hurdle)
                  or self._out_of_patience(cand.island, rung))
        self.stopped_in_a_row[cand.island] = 0 if passed else self.stopped_in_a_row[cand.island] + 1
        self.store.insert_rung(
            candidate_id=cand.id, status=rung.status, aggregate=rung.aggregate,
            fitness_json=json.dumps(rung.to_dict()), hurdle=hurdle, passed=int(passed),
            source=source, duplicate_of=duplicate_of, finished_at=time.time(), cost_s=cost_s,
            worker=worker)
        if passed:
            self.rung_scores[cand.id] = rung.aggregate
            self._submit(cand.id, cand.text)
            return
        del self.pending[cand.id]
        self._release_keys(cand)
        self._stop(cand, "rung" if source == "evaluated" else source, duplicate_of)
        for twin in self.waiting.pop(cand.id, []):
            self._stop(twin, "twin", cand.id)

    def _out_of_patience(self, island: int, rung: Fitness) -> bool:
        """The stall guard (evaluation.hurdle_patience): a finished rung goes on after that
        many children in a row were stopped on its island."""
        patience = self.config.evaluation.hurdle_patience
        return rung.ok and patience > 0 and self.stopped_in_a_row[island] >= patience

    def _stop(self, cand: Candidate, source: str, duplicate_of: int | None) -> None:
        """A candidate stopped at the hurdle: it has no fitness and its island never hears of
        it -- no member ages, the hurdle and the plateau stay as they were (search.hurdles)."""
        self.counters["stopped"] += 1
        self.counters["screened" if source == "rung" else "cache_hits"] += 1
        self.store.update_candidate(cand.id, status="stopped", source=source,
                                    duplicate_of=duplicate_of, finished_at=time.time())

    def _finish(self, cand: Candidate, fitness: Fitness, worker: str) -> None:
        with self._step():
            self._release_keys(cand)
            for key in cand.cache_keys():
                if fitness.cacheable:
                    self.cache.put(key, fitness, cand.id)
            if self.shared_cache is not None:
                self.shared_cache.store(cand.cache_keys(), self.cache.suite_version, fitness)
            self._conclude(cand, fitness, "evaluated", worker=worker, cost_s=fitness.cost_s)
            for twin in self.waiting.pop(cand.id, []):
                self._conclude(twin, fitness, "twin", duplicate_of=cand.id)

    def _conclude(self, cand: Candidate, fitness: Fitness, source: str,
                  duplicate_of: int | None = None, worker: str | None = None,
                  cost_s: float | None = None) -> None:
        """Record a candidate's fitness and tell its island."""
        evaluated = source == "evaluated"
        self.counters["evaluated" if evaluated else "cache_hits"] += 1
        self.counters["screened"] += evaluated
        self.counters["failed"] += evaluated and not fitness.ok
        program, shash, folded = _folded(cand, fitness)
        self.store.update_candidate(
            cand.id, status=fitness.status, source=source, duplicate_of=duplicate_of,
            fitness_json=json.dumps(fitness.to_dict()), aggregate=fitness.aggregate,
            finished_at=time.time(), cost_s=cost_s, worker=worker, **folded)
        rung = self.rung_scores.pop(cand.id, None)
        if self.hurdles and duplicate_of is not None:
            rung = member_rung(self.store, cand.id, duplicate_of)
        ind = Individual(cand.id, program, selection_value(fitness.aggregate), shash, rung)
        island = self.islands[cand.island]
        island.tell(ind, cand.epoch, cand.op == "init", evaluated)
        if fitness.ok and (self.best is None or ind.fitness > self.best.fitness):
            self.best, self._best_changed = ind, True
        self._maybe_restart(island)

    def _maybe_restart(self, island: RegularizedEvolution) -> None:
        if island.plateaued(self.config.search.restart_plateau):
            island.restart(from_best=self.config.search.restart_from == "best")
            self.counters["restarts"] += 1

    # -- persistence ---------------------------------------------------------------------
    @contextmanager
    def _step(self):
        self.outbox = []
        with self.store.transaction():
            yield
            self.save_state()
        self.saved_members = [(isl.first_joined, isl.joined) for isl in self.islands]
        for job in self.outbox:  # after the commit: a resume re-submits what was lost
            self.backend.submit(*job)
        self.outbox = []
        if self._best_changed:  # after the commit: best.py never names an unsaved program
            self.write_best()
        self.on_step(self)

    def write_best(self) -> None:
        self._best_changed = False
        if self.best is not None:
            self.store.write_best(format_program(self.best.program),
                                  f"# candidate {self.best.id}, fitness {self.best.fitness!r}\n")

    def save_state(self) -> None:
        """Inside the step's transaction: the snapshot, and each island's members that joined
        or died since the last commit (a restart rewrites its island's members once)."""
        for i, island in enumerate(self.islands):
            first, joined = self.saved_members[i]
            if island.first_joined > first:
                self.store.drop_members(i, island.first_joined)
            self.store.add_members(i, island.joined_since(joined))
        self.store.save_state("search", self.snapshot())

    def snapshot(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "counters": self.counters,
                "next_island": self.next_island, "next_id": self.next_id, "budget": self.budget,
                "jobs": list(self.jobs), "stopped_in_a_row": list(self.stopped_in_a_row),
                "refine": {"next": self.next_refine, "done": sorted(self.refined)},
                "best": self.best.id if self.best else None,
                "islands": [island.state() for island in self.islands]}

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.counters.update(state["counters"])
        if "screened" not in state["counters"]:  # a run from before hurdles: all were full
            self.counters["screened"] = self.counters["evaluated"]
        self.next_island, self.next_id = state["next_island"], state["next_id"]
        self.budget = state["budget"]
        # runs from before the stall guard kept no count: start it again
        self.stopped_in_a_row = list(state.get("stopped_in_a_row", self.stopped_in_a_row))
        refine = state.get("refine", {})  # runs from before constant fitting: none done
        self.next_refine = refine.get("next", self.next_refine)
        self.refined = set(refine.get("done", ()))
        load = _IndividualLoader(self.store)
        self.best = load(state["best"]) if state["best"] is not None else None
        for island, island_state, members in zip(self.islands, state["islands"],
                                                 self.store.populations(state)):
            island.restore(island_state, load, members)
        # a run from before the table `members` has none stored yet: the next commit adds all
        self.saved_members = [(0, 0) if "population" in island_state
                              else (island.first_joined, island.joined)
                              for island, island_state in zip(self.islands, state["islands"])]
        for row in self.store.in_flight():
            cand = Candidate(row["id"], row["island"], row["epoch"], row["mutation"],
                             parse(row["program"]), row["program"], row["structural_hash"],
                             row["fingerprint"])
            if row["status"] == "pending":
                self._add_pending(cand)
                rung = self.store.rung(cand.id) if self.hurdles else None
                if rung is not None:  # cleared the hurdle, in its full evaluation
                    self.rung_scores[cand.id] = rung["aggregate"]
            else:
                self.waiting.setdefault(row["duplicate_of"], []).append(cand)
        # runs from before hurdles kept no job list: their jobs were full, in id order
        self.jobs = list(state.get("jobs", self.pending))

    def close(self) -> None:
        self.backend.close()
        if self.shared_cache is not None:
            self.shared_cache.close()
        self.store.close()

    def resubmit(self) -> None:
        """Dispatch the candidates that were in flight when the run stopped, in order."""
        for job_id in self.jobs:
            rung = job_id < 0
            cand = self.pending[rung_job(job_id) if rung else job_id]
            self.backend.submit(job_id, cand.text, rung)


def _folded(cand: Candidate, fitness: Fitness) -> tuple[Program, str, dict]:
    """The program as stored: with an lr sweep's chosen step folded into its lr constant, so
    the stored program alone reproduces the run its fitness comes from. Returns the program,
    its structural hash and the store columns that change (none without a sweep)."""
    if fitness.lr_factor == 1.0:
        return cand.program, cand.structural_hash, {}
    program = with_lr_factor(cand.program, fitness.lr_factor)
    shash = structural_hash(program)
    return program, shash, {"program": format_program(program), "structural_hash": shash}


class _IndividualLoader:
    def __init__(self, store: RunStore):
        self.store, self.memo = store, {}

    def __call__(self, candidate_id: int) -> Individual:
        if candidate_id not in self.memo:
            row = self.store.candidate(candidate_id)
            self.memo[candidate_id] = Individual(
                row["id"], parse(row["program"]), selection_value(row["aggregate"]),
                row["structural_hash"], member_rung(self.store, candidate_id, row["duplicate_of"]))
        return self.memo[candidate_id]


def member_rung(store: RunStore, candidate_id: int, duplicate_of: int | None) -> float | None:
    """The rung score a member brings to the hurdle: its own, or for a duplicate (cache hit,
    twin) that of the program it duplicates -- else a population refilled by duplicates would
    have no rung scores left, and no hurdle."""
    for cid in (candidate_id, duplicate_of):
        rung = store.rung(cid) if cid is not None else None
        if rung is not None:
            return rung["aggregate"]
    return None


def _first(keys, get):
    """(key, value) of the first key that `get` knows, or (None, None)."""
    for key in keys:
        value = get(key)
        if value is not None:
            return key, value
    return None, None


def start_run(run_dir: str, config: Config, initial: Program | None,
              backend_factory=backend_for) -> Driver:
    """A new run directory; `initial=None` starts from random programs."""
    if os.path.exists(os.path.join(run_dir, DB_NAME)):  # before the (slow) backend starts
        raise FileExistsError(f"{run_dir} already holds a run")
    backend = backend_factory(config.evaluation)
    try:
        store = RunStore.create(run_dir, to_toml(config))
    except BaseException:
        backend.close()
        raise
    driver = Driver(store, config, backend, initial)
    with store.transaction():
        store.save_state("meta", {"initial": format_program(initial) if initial else None,
                                  "cache_version": driver.cache.suite_version,
                                  "created_at": time.time()})
        driver.save_state()
    return driver


def resume_run(run_dir: str, budget: int | None = None, backend_factory=backend_for) -> Driver:
    """Continue a stopped or killed run from its last committed step."""
    store = RunStore.open(run_dir)
    config = load(store.config_path)
    meta = store.load_state("meta")
    initial = parse(meta["initial"]) if meta["initial"] else None
    driver = Driver(store, config, backend_factory(config.evaluation), initial)
    driver.restore(store.load_state("search"))
    if budget is not None:
        driver.budget = budget
    driver.write_best()
    driver.resubmit()
    return driver

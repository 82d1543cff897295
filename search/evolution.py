"""Regularized (aging) evolution in ask/tell form (Real et al. 2019; evosax-style interface).

The algorithm proposes programs and receives fitness values; it never sees a task, a worker
or the store. `ask` samples T members of the population, mutates the fittest; `tell` appends
the child and removes the oldest member -- age, not fitness, decides who dies, which keeps the
population moving instead of converging on lucky early scores.

Asynchronous use: any number of asks may be outstanding; tells arrive in any order. One
`RegularizedEvolution` is one island; islands are independent populations.

Persistence: a tell changes the population by one member in and at most one out, so the
members are saved as rows (`joined_since`, numbered by `joined`), not in `state`: saving a
step then costs the same whatever the population size (a random search runs with a
population as large as its budget).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from itertools import islice

from optsearch.primitives.program import Program
from optsearch.search.mutation import MutationFailed, Mutator


@dataclass(frozen=True)
class Individual:
    id: int  # candidate id in the run store
    program: Program
    fitness: float  # higher is better; failures are -inf
    structural_hash: str
    # Score on the cheap rung (search.hurdles), if it ran one: sets the hurdle for later
    # children, never used to rank (selection sees `fitness` only; a child stopped at the
    # hurdle has no fitness and never becomes a member).
    rung: float | None = None


@dataclass(frozen=True)
class Proposal:
    program: Program
    parent_id: int | None
    op: str  # "init", "insert", "delete", "modify", "replace"
    detail: str
    structural_hash: str | None
    epoch: int  # population generation; restarts bump it and orphan older proposals
    invalid: int = 0  # rejected mutation attempts before this proposal
    unchanged: int = 0


def selection_value(aggregate) -> float:
    """Fitness as the population sees it: failures and missing values rank last."""
    if isinstance(aggregate, (int, float)) and math.isfinite(aggregate):
        return float(aggregate)
    return -math.inf


class RegularizedEvolution:
    def __init__(self, population_size: int, tournament_size: int, mutator: Mutator,
                 initial: Program | list[Program] | None, random_init_statements: int = 6):
        # initial=None: the population starts from P random programs; else each initial program
        # (the warm start, or its lr sweep: search.warm_start) is evaluated once and the
        # population is P copies of the best of them, as in the paper's warm start from AdamW.
        self.P, self.T = population_size, tournament_size
        self.mutator = mutator
        if isinstance(initial, Program):
            initial = [initial]
        self.initials: list[Program] = list(initial or [])
        self.random_init_statements = random_init_statements
        self.population: deque[Individual] = deque()
        self.joined = 0  # members that ever joined (all epochs): the next member's number
        self.epoch = 0
        self.init_asked = 0
        self.init_told: list[Individual] = []  # warm-start programs evaluated this epoch
        # The best of this island's current lineage: a restart from the initial population
        # forgets it, so the plateau that ends a fresh start is measured against that start's
        # own progress (the run's best is the driver's, kept across restarts).
        self.best: Individual | None = None
        self.since_improvement = 0  # evaluations told since `best` last improved

    @property
    def init_count(self) -> int:
        return len(self.initials) if self.initials else self.P

    def ask(self, rng) -> Proposal | None:
        """The next program to evaluate, or None until the pending initial programs are told."""
        if self.init_asked < self.init_count:
            self.init_asked += 1
            if self.initials:
                program = self.initials[self.init_asked - 1]
            else:
                program = self.mutator.random_program(rng, self.random_init_statements)
            return Proposal(program, None, "init", "initial program", None, self.epoch)
        if not self.population:
            return None
        parent = self.tournament(rng)
        try:
            m = self.mutator.mutate(parent.program, rng, parent.structural_hash)
        except MutationFailed:
            return None
        return Proposal(m.child, parent.id, m.op, m.detail, m.structural_hash, self.epoch,
                        m.invalid, m.unchanged)

    def tournament(self, rng) -> Individual:
        picks = rng.integers(len(self.population), size=self.T)  # with replacement, as AutoML-Zero
        return max((self.population[int(i)] for i in picks), key=lambda ind: ind.fitness)

    def tell(self, individual: Individual, proposal_epoch: int, is_init: bool,
             evaluated: bool) -> None:
        if self.best is None or individual.fitness > self.best.fitness:
            self.best, self.since_improvement = individual, 0
        elif evaluated:
            self.since_improvement += 1
        if proposal_epoch != self.epoch:
            return  # a child of a population that a restart replaced
        if is_init and self.initials:
            self.init_told.append(individual)
            if len(self.init_told) < len(self.initials):
                return  # the population starts once every warm-start program is known
            best_init = max(self.init_told, key=lambda ind: ind.fitness)
            self._join([best_init] * self.P)
        else:
            self._join([individual])
        while len(self.population) > self.P:
            self.population.popleft()  # the oldest dies

    def plateaued(self, evaluations: int) -> bool:
        return evaluations > 0 and self.since_improvement >= evaluations

    def restart(self, from_best: bool) -> None:
        """Replace the population: P copies of the best, or the initial population again.

        A fresh start also forgets the best: judged against the previous lineage's best, it
        would plateau after `restart_plateau` evaluations unless it overtook that lineage
        within them, and every later start would be cut that short."""
        self.epoch += 1
        self.population.clear()
        self.init_told = []
        self.since_improvement = 0
        if from_best and self.best is not None:
            self._join([self.best] * self.P)
            self.init_asked = self.init_count
        else:
            self.init_asked = 0
            self.best = None

    def _join(self, members: list[Individual]) -> None:
        self.population.extend(members)
        self.joined += len(members)

    @property
    def first_joined(self) -> int:
        """The number of the oldest member (`joined` when the population is empty)."""
        return self.joined - len(self.population)

    def joined_since(self, joined: int) -> list[tuple[int, int]]:
        """(number, candidate id) of the living members numbered `joined` or later, oldest
        first: what changed since a save that had seen `joined` members join."""
        start = max(joined, self.first_joined)
        newest = islice(reversed(self.population), self.joined - start)  # O(changes), not O(P)
        return list(zip(range(start, self.joined), [ind.id for ind in newest][::-1]))

    def state(self) -> dict:
        """Everything but the members (see `joined_since`): its size does not grow with P."""
        return {"joined": self.joined, "epoch": self.epoch,
                "init_asked": self.init_asked, "init_told": [ind.id for ind in self.init_told],
                "since_improvement": self.since_improvement,
                "best": self.best.id if self.best else None}

    def restore(self, state: dict, load, members: list[int]) -> None:
        """Inverse of `state` with the members' candidate ids, oldest first; `load(id) ->
        Individual` reads candidates from the store."""
        self.population = deque(load(i) for i in members)
        self.joined = state.get("joined", len(members))  # older runs: numbered from 0
        self.epoch, self.init_asked = state["epoch"], state["init_asked"]
        self.init_told = [load(i) for i in state.get("init_told", [])]  # older runs: none
        self.since_improvement = state["since_improvement"]
        self.best = load(state["best"]) if state["best"] is not None else None

"""Regularized evolution, ask/tell, with a fake fitness (no tasks, no backend)."""

import math

import numpy as np

from optsearch.evaluator.fake_backend import fake_fitness
from optsearch.primitives import format_program
from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.reference import load_reference
from optsearch.search.evolution import Individual, RegularizedEvolution, selection_value
from optsearch.search.mutation import Mutator

ADAMW = load_reference("adamw")


def make(P=8, T=3, initial=ADAMW):
    return RegularizedEvolution(P, T, Mutator(), initial, random_init_statements=3)


def told(evo, proposal, ident, fitness=None):
    if fitness is None:
        fitness = fake_fitness(format_program(proposal.program)).aggregate
    ind = Individual(ident, proposal.program, fitness, structural_hash(proposal.program))
    evo.tell(ind, proposal.epoch, proposal.op == "init", evaluated=True)
    return ind


def test_warm_start_asks_once_then_waits_then_fills_population_with_copies():
    evo, rng = make(), np.random.default_rng(0)
    first = evo.ask(rng)
    assert first.op == "init" and first.program == ADAMW and first.parent_id is None
    assert evo.ask(rng) is None  # nothing to mutate until the initial program is told
    told(evo, first, 0)
    assert len(evo.population) == 8 and {ind.id for ind in evo.population} == {0}
    child = evo.ask(rng)
    assert child.parent_id == 0 and child.op in ("insert", "delete", "modify", "replace")


def test_random_init_asks_population_size_random_programs():
    evo, rng = make(P=5, initial=None), np.random.default_rng(1)
    inits = [evo.ask(rng) for _ in range(5)]
    assert all(p.op == "init" for p in inits)
    assert len({structural_hash(p.program) for p in inits}) == 5
    assert evo.ask(rng) is None
    told(evo, inits[2], 2)
    assert evo.ask(rng).parent_id == 2  # asynchronous: mutates what has come back


def test_oldest_dies_not_the_worst():
    evo, rng = make(P=4), np.random.default_rng(2)
    told(evo, evo.ask(rng), 0, fitness=10.0)  # four copies of a very fit program
    for k in range(1, 7):
        told(evo, evo.ask(rng), k, fitness=float(-k))
    assert [ind.id for ind in evo.population] == [3, 4, 5, 6]


def test_tournament_returns_the_fittest_of_its_sample():
    evo = make(P=6, T=3)
    evo.population.extend(Individual(i, ADAMW, f, "h") for i, f in
                          enumerate([0.1, 0.5, -math.inf, 0.9, 0.3, 0.2]))
    for seed in range(50):
        picks = np.random.default_rng(seed).integers(6, size=3)
        best = max(picks, key=lambda i: evo.population[int(i)].fitness)
        assert evo.tournament(np.random.default_rng(seed)).id == int(best)


def test_selection_value_ranks_failures_last():
    assert selection_value(1.5) == 1.5
    assert selection_value(None) == selection_value(float("nan")) == -math.inf


def test_restart_from_best_and_stale_children_are_ignored():
    evo, rng = make(P=4), np.random.default_rng(3)
    told(evo, evo.ask(rng), 0, fitness=1.0)
    stale = evo.ask(rng)
    best = told(evo, evo.ask(rng), 2, fitness=2.0)
    for k in range(3, 6):
        told(evo, evo.ask(rng), k, fitness=0.5)
    assert evo.plateaued(3) and not evo.plateaued(4)
    evo.restart(from_best=True)
    assert list(evo.population) == [best] * 4 and evo.epoch == 1
    told(evo, stale, 99, fitness=0.0)
    assert 99 not in {ind.id for ind in evo.population}
    assert evo.ask(rng).parent_id == 2


def test_restart_from_initial_initialises_again():
    evo, rng = make(P=4), np.random.default_rng(4)
    told(evo, evo.ask(rng), 0)
    evo.restart(from_best=False)
    assert not evo.population and evo.ask(rng).op == "init"


def test_a_fresh_start_plateaus_on_its_own_progress_not_the_previous_lineage():
    """After a restart from the initial population the plateau counts evaluations since the
    fresh start's own best improved: measured against the previous lineage's best, every
    later start was cut off after `restart_plateau` evaluations."""
    evo, rng = make(P=4), np.random.default_rng(6)
    told(evo, evo.ask(rng), 0, fitness=1.0)
    told(evo, evo.ask(rng), 1, fitness=5.0)  # the first lineage's best
    evo.restart(from_best=False)
    told(evo, evo.ask(rng), 2, fitness=1.0)  # the warm start again, far below 5.0
    improving = [told(evo, evo.ask(rng), k, fitness=1.0 + k / 10) for k in range(3, 8)]
    assert evo.best == improving[-1] and not evo.plateaued(1)
    for k in range(8, 11):
        told(evo, evo.ask(rng), k, fitness=0.0)
    assert evo.plateaued(3) and not evo.plateaued(4)


def test_state_restore_round_trip():
    evo, rng = make(P=4), np.random.default_rng(5)
    individuals = {}
    for k in range(7):
        individuals[k] = told(evo, evo.ask(rng), k)
    other = make(P=4)
    other.restore(evo.state(), individuals.__getitem__, [ind.id for ind in evo.population])
    assert other.state() == evo.state() and list(other.population) == list(evo.population)
    assert other.best == evo.best


def test_the_members_saved_as_changes_rebuild_the_population():
    """The rule the run store relies on: the rows `joined_since` gives after each tell (and
    the members below `first_joined` dropped) rebuild the population exactly, in order --
    through the warm start, aging and both kinds of restart -- and a plain tell adds one row."""
    evo, rng = make(P=4), np.random.default_rng(7)
    rows, saved = {}, 0
    for k in range(40):
        proposal = evo.ask(rng)
        if proposal is None:  # a restart from the initial program waits for it
            continue
        told(evo, proposal, k)
        if k in (12, 25):
            evo.restart(from_best=k == 12)
        added = evo.joined_since(saved)
        if proposal.op != "init" and k not in (12, 25):
            assert len(added) == 1
        rows = {n: cid for n, cid in rows.items() if n >= evo.first_joined} | dict(added)
        saved = evo.joined
        assert [rows[n] for n in sorted(rows)] == [ind.id for ind in evo.population]


def test_ask_tell_loop_finds_sign_with_the_fake_fitness():
    # The evolution loop in ten lines: ask, evaluate, tell.
    evo, rng = make(P=16, T=4), np.random.default_rng(6)
    for k in range(300):
        proposal = evo.ask(rng)
        told(evo, proposal, k)
    assert evo.best.fitness > 1.4  # only programs with a live sign() score above 1.5 - 0.2
    assert "sign(" in format_program(evo.best.program)

"""The lr-swept warm start: the initial program at several step sizes, best one fills the
population (search.warm_start, search.evolution)."""

import numpy as np
import pytest

from optsearch.primitives import format_program, parse
from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.reference import load_reference
from optsearch.search.config import ConfigError, from_dict
from optsearch.search.evolution import Individual, RegularizedEvolution
from optsearch.search.mutation import Mutator, is_valid
from optsearch.search.warm_start import lr_sweep, parse_factors, with_lr_factor

ADAMW = load_reference("adamw")


def test_a_factor_scales_the_lr_constant_and_nothing_else():
    scaled = with_lr_factor(ADAMW, 15.0)
    changed = [(a, b) for a, b in zip(ADAMW.statements, scaled.statements) if a != b]
    assert len(scaled) == len(ADAMW) and len(changed) == 1
    assert changed[0][1].args == ("lr", 0.015)  # 0.001 * 15, stored without float noise
    assert parse(format_program(scaled)) == scaled and is_valid(scaled)
    assert with_lr_factor(ADAMW, 1.0) is ADAMW


def test_without_an_lr_constant_the_update_is_multiplied_in_a_last_statement():
    program = parse("def train(w, g, lr):\n    update = g * lr\n    return update\n")
    scaled = with_lr_factor(program, 4.0)
    assert format_program(scaled).splitlines()[-2].strip() == "update = update * 4.0"
    assert is_valid(scaled)


def test_factors_parse_and_bad_ones_are_config_errors():
    assert parse_factors("0.5, 1,2") == (0.5, 1.0, 2.0)
    for bad in ("", "1,x", "0,1", "-1", "1,1", "inf"):
        with pytest.raises(ValueError):
            parse_factors(bad)
        with pytest.raises(ConfigError, match="init_lr_factors"):
            from_dict({"search": {"init_lr_factors": bad}})


def _tell(evo, proposal, ident, fitness):
    ind = Individual(ident, proposal.program, fitness, structural_hash(proposal.program))
    evo.tell(ind, proposal.epoch, proposal.op == "init", evaluated=True)
    return ind


def test_every_swept_program_is_asked_and_the_best_fills_the_population_in_any_tell_order():
    # The rule: selection starts only when the whole sweep is known, from its best member.
    programs = lr_sweep(ADAMW, (0.5, 1.0, 4.0))
    evo, rng = RegularizedEvolution(6, 2, Mutator(), programs), np.random.default_rng(0)
    asked = [evo.ask(rng) for _ in range(3)]
    assert [p.program for p in asked] == programs and all(p.op == "init" for p in asked)
    assert evo.ask(rng) is None
    _tell(evo, asked[2], 2, 3.0)
    _tell(evo, asked[0], 0, 1.0)
    assert not evo.population and evo.ask(rng) is None  # one still out
    _tell(evo, asked[1], 1, 2.0)
    assert [ind.id for ind in evo.population] == [2] * 6
    assert evo.ask(rng).parent_id == 2


def test_a_half_told_sweep_survives_state_and_restore():
    programs = lr_sweep(ADAMW, (1.0, 2.0))
    evo, rng = RegularizedEvolution(4, 2, Mutator(), programs), np.random.default_rng(1)
    first, second = evo.ask(rng), evo.ask(rng)
    inds = {0: _tell(evo, first, 0, 5.0)}
    other = RegularizedEvolution(4, 2, Mutator(), programs)
    other.restore(evo.state(), inds.__getitem__, [ind.id for ind in evo.population])
    _tell(other, second, 1, 1.0)
    assert [ind.id for ind in other.population] == [0] * 4


def test_restart_from_initial_sweeps_again():
    programs = lr_sweep(ADAMW, (1.0, 2.0))
    evo, rng = RegularizedEvolution(4, 2, Mutator(), programs), np.random.default_rng(2)
    for k in range(2):
        _tell(evo, evo.ask(rng), k, float(k))
    evo.restart(from_best=False)
    again = [evo.ask(rng) for _ in range(2)]
    assert [p.program for p in again] == programs and evo.ask(rng) is None

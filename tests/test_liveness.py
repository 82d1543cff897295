"""Liveness with cross-iteration state."""

import numpy as np

from optsearch.primitives import format_program, parse
from optsearch.primitives.analysis import check
from optsearch.primitives.hashing import fingerprint, structural_hash
from optsearch.primitives.liveness import (
    dead_fraction,
    live_indices,
    live_program,
    live_state_slots,
)
from optsearch.primitives.reference import load_reference
from optsearch.search.mutation import Mutator


def test_program4_cosh_is_dead_across_iterations():
    # m = cosh(update) writes slot m, but the next call overwrites m before reading it.
    p = load_reference("program4")
    cosh = next(i for i, s in enumerate(p.statements) if s.op == "cosh")
    assert cosh not in live_indices(p)
    assert live_state_slots(p) == frozenset({1})  # only v carries information
    assert len(live_program(p).statements) == len(p.statements) - 1


def test_state_slot_read_next_call_keeps_its_writer_alive():
    p = parse("def train(w, g, m, lr):\n    u = sign(m)\n    m = interp(g, m, 0.9)\n"
              "    return u, m\n")
    assert live_indices(p) == {0, 1} and live_state_slots(p) == {0}


def test_chain_through_two_slots_needs_fixed_point():
    # update reads a; a's writer reads b; b's writer reads g: two rounds to see b live.
    p = parse("def train(w, g, a, b, lr):\n    u = sign(a)\n    a = b * 1.0\n    b = g * 1.0\n"
              "    return u, a, b\n")
    assert live_indices(p) == {0, 1, 2} and live_state_slots(p) == {0, 1}


def test_unused_statements_and_slots_are_dead():
    p = parse("def train(w, g, m, v, lr):\n    x = exp(g)\n    v = cosh(x)\n    u = g * lr\n"
              "    m = sign(u)\n    return u, m, v\n")
    assert live_indices(p) == {2} and live_state_slots(p) == frozenset()
    assert dead_fraction(p) == 0.75


def test_live_program_keeps_reads_of_overwritten_names_correct():
    p = parse("def train(w, g, lr):\n    x = g * 2.0\n    y = x * 3.0\n    x = exp(g)\n"
              "    return y\n")
    live = live_program(p)
    assert [s.op for s in live.statements] == ["mul", "mul"]


def test_live_program_is_a_valid_program_when_a_dead_slot_returned_dead_code():
    # t is defined only by a dead statement (slot m is never read): the live program must
    # not return an undefined name (this used to crash `optsearch check` with a KeyError).
    p = parse("def train(w, g, m, lr):\n    t = exp(g)\n    u = g * lr\n    return u, t\n")
    live = live_program(p)
    assert [s.op for s in live.statements] == ["mul"] and live.returns == ("u", "m")
    check(parse(format_program(live)))
    assert structural_hash(live) == structural_hash(p) and fingerprint(live) == fingerprint(p)


def test_live_program_never_returns_a_scalar_for_a_dead_slot():
    # After dropping `m = cosh(u)`, the name m means the scalar norm(g): return the update.
    p = parse("def train(w, g, m, lr):\n    m = norm(g)\n    u = g * m\n    m = cosh(u)\n"
              "    return u, m\n")
    live = live_program(p)
    assert live.returns == ("u", "u")
    check(parse(format_program(live)))


def test_live_program_of_mutator_children_is_valid_and_a_fixed_point():
    rng, mutator = np.random.default_rng(7), Mutator()
    program = load_reference("program4")
    for _ in range(150):
        program = mutator.mutate(program, rng).child
        live = live_program(program)
        check(parse(format_program(live)))
        assert live_program(live) == live
        assert live_state_slots(live) == live_state_slots(program)
        assert structural_hash(live) == structural_hash(program)

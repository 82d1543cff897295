"""Liveness with cross-iteration state (DESIGN.md §4)."""

from primitives import parse
from primitives.liveness import dead_fraction, live_indices, live_program, live_state_slots
from primitives.reference import load_reference


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

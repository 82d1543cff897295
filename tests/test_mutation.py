"""The mutator: eventually every allowed outcome, never a forbidden one (bounded iterations)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optsearch.primitives import format_program, parse
from optsearch.primitives.analysis import infer_kinds
from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.pool import POOL
from optsearch.primitives.program import Program, Statement
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference
from optsearch.search.config import MutationConfig
from optsearch.search.mutation import MutationFailed, Mutator, insert, is_valid, modify, replace

ADAMW = load_reference("adamw")


def eventually(sample, outcome, allowed, iterations, forbidden=lambda x: False):
    """Draw until every allowed outcome has appeared; fail on a forbidden draw or a timeout."""
    seen = set()
    for _ in range(iterations):
        x = sample()
        assert not forbidden(x), f"forbidden outcome: {x}"
        seen.add(outcome(x))
        if set(allowed) <= seen:
            return seen
    pytest.fail(f"never produced {sorted(set(allowed) - seen)} in {iterations} draws")


def child_problems(parent, mutation, max_statements=None):
    child = mutation.child
    problems = []
    if not is_valid(child):
        problems.append("invalid")
    if structural_hash(child) in (structural_hash(parent),):
        problems.append("same structure as the parent")
    if mutation.structural_hash != structural_hash(child):
        problems.append("wrong hash")
    if parse(format_program(child)) != child:
        problems.append("does not round-trip")
    if max_statements is not None and len(child) > max_statements:
        problems.append("too long")
    return problems


def test_every_operator_eventually_and_children_always_valid_new_and_round_trip():
    mutator, rng = Mutator(), np.random.default_rng(0)
    eventually(lambda: mutator.mutate(ADAMW, rng), lambda m: m.op,
               {"insert", "delete", "modify", "replace"}, 200,
               forbidden=lambda m: child_problems(ADAMW, m))


def test_modify_eventually_uses_variables_new_constants_scaled_and_ema_jittered_constants():
    rng = np.random.default_rng(1)
    kinds = infer_kinds(ADAMW).kinds

    def sample():
        child, detail = modify(ADAMW, kinds, rng)
        return child, detail

    def forbidden(x):
        # a scaled constant keeps its sign: 0.9 * 2^N(0,1) > 0; an ema-jittered interp
        # weight stays below 1: 1 - (1 - 0.9) * 2^N(0,1) < 1 (the EMA cannot explode)
        _, detail = x
        if "(scale)" not in detail and "(ema)" not in detail:
            return False
        new = float(detail.split("-> ")[1])
        return ("(scale)" in detail and new < 0) or ("(ema)" in detail and new >= 1)

    eventually(sample, lambda x: x[1].split("(")[1].split(")")[0],
               {"variable", "constant", "scale", "ema"}, 800, forbidden=forbidden)


def test_ema_jitter_only_touches_interp_like_constants_and_can_be_switched_off():
    rng, kinds = np.random.default_rng(5), infer_kinds(ADAMW).kinds
    for _ in range(400):
        _, detail = modify(ADAMW, kinds, rng)
        if "(ema)" in detail:   # AdamW's 0.9 and 0.999, never its lr 0.001 or decay 0.01
            old = float(detail.split(": ")[1].split(" ->")[0])
            assert 0.5 <= old < 1
        _, detail = modify(ADAMW, kinds, rng, ema=False)
        assert "(ema)" not in detail
    mutator = Mutator(MutationConfig(ema_jitter=False, insert_weight=0, delete_weight=0))
    assert all("(ema)" not in mutator.mutate(ADAMW, rng).detail for _ in range(300))


def test_insert_eventually_uses_every_pool_function_and_both_target_kinds():
    rng, kinds = np.random.default_rng(2), infer_kinds(ADAMW).kinds
    existing = {s.target for s in ADAMW.statements} | set(ADAMW.params)

    def sample():
        child, _ = insert(ADAMW, kinds, rng)
        new = next(s for s, t in zip(child.statements, (*ADAMW.statements, None))
                   if s != t) if child else None
        return child, new

    def outcome(x):
        child, new = x
        if child is None or not is_valid(child):
            return "invalid"
        return (new.op, "existing" if new.target in existing else "new")

    allowed = {(name, target) for name in POOL for target in ("new", "existing")}
    allowed = {a for a in allowed if a[0] not in ("norm", "mean", "dot", "cosine_sim",
                                                  "clip_by_norm") or a[1] == "new"}
    # A scalar written over an existing tensor variable is mostly invalid; a new one is fine.
    eventually(sample, outcome, allowed, 20000)


def test_replace_swaps_the_function_and_keeps_the_arguments_that_fit():
    # The rule: one replace turns AdamW's `update = m / sqrt_v` into `update = sign(m)` (the
    # step to sign momentum that the paper's operators almost never draw); the target and the
    # first argument survive, a tensor argument is never a constant.
    rng, kinds = np.random.default_rng(8), infer_kinds(ADAMW).kinds
    index = next(i for i, s in enumerate(ADAMW.statements) if s.args == ("m", "sqrt_v"))

    def sample():
        child, detail = replace(ADAMW, kinds, rng)
        return child, detail

    def outcome(x):
        child, _ = x
        if child is None:
            return None
        return child.statements[index] if child.statements[index] != ADAMW.statements[index] \
            else None

    def forbidden(x):
        child, _ = x
        if child is None:
            return False
        changed = [(a, b) for a, b in zip(ADAMW.statements, child.statements) if a != b]
        new = changed[0][1]
        tensor_const = any(need == "tensor" and not isinstance(arg, str)
                           for need, arg in zip(POOL[new.op].arg_kinds, new.args))
        return (len(changed) != 1 or new.target != changed[0][0].target
                or new.op == changed[0][0].op or tensor_const)

    eventually(sample, outcome, {Statement("update", "sign", ("m",)),
                                 Statement("update", "abs", ("m",))}, 20000, forbidden)


def test_replace_weight_zero_gives_the_papers_three_operators():
    rng = np.random.default_rng(9)
    paper = Mutator(MutationConfig(replace_weight=0.0))
    assert all(paper.mutate(ADAMW, rng).op != "replace" for _ in range(300))


def test_inserts_respect_argument_kinds():
    rng, kinds = np.random.default_rng(3), infer_kinds(ADAMW).kinds
    for _ in range(500):
        child, _ = insert(ADAMW, kinds, rng)
        if child is None:
            continue
        for stmt in child.statements:
            for need, arg in zip(POOL[stmt.op].arg_kinds, stmt.args):
                assert not (need == "tensor" and not isinstance(arg, str)), stmt


def test_weights_and_length_cap_forbid_operators():
    rng = np.random.default_rng(4)
    no_insert = Mutator(MutationConfig(insert_weight=0.0))
    capped = Mutator(MutationConfig(max_statements=len(ADAMW)))
    for _ in range(100):
        assert no_insert.mutate(ADAMW, rng).op != "insert"
        m = capped.mutate(ADAMW, rng)
        assert m.op != "insert" and len(m.child) <= len(ADAMW)


def test_same_seed_same_children():
    def chain(seed):
        rng, program, out = np.random.default_rng(seed), ADAMW, []
        for _ in range(20):
            program = Mutator().mutate(program, rng).child
            out.append(format_program(program))
        return out

    assert chain(5) == chain(5)
    assert chain(5) != chain(6)


def test_impossible_mutation_raises_after_bounded_tries():
    # Deleting the only statement leaves `update` undefined: never valid.
    program = Program(("w", "g", "lr"), (Statement("update", "mul", ("g", "lr")),), ("update",))
    mutator = Mutator(MutationConfig(insert_weight=0, modify_weight=0, replace_weight=0,
                                     max_tries=50))
    with pytest.raises(MutationFailed):
        mutator.mutate(program, np.random.default_rng(0))


def test_random_programs_are_valid_and_varied():
    mutator, rng = Mutator(), np.random.default_rng(7)
    programs = [mutator.random_program(rng, 5) for _ in range(10)]
    assert all(is_valid(p) and len(p) == 6 for p in programs)
    assert len({structural_hash(p) for p in programs}) == 10


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 25),
       start=st.sampled_from(REFERENCE_NAMES))
def test_mutation_chains_stay_valid_and_round_trip(seed, steps, start):
    mutator, rng = Mutator(MutationConfig(max_statements=16)), np.random.default_rng(seed)
    program = load_reference(start)
    for _ in range(steps):
        m = mutator.mutate(program, rng)
        assert not child_problems(program, m, max_statements=16)
        program = m.child


def test_an_insert_into_a_new_variable_is_spliced_into_exactly_one_later_read():
    # The rule (with `splice`): a new value nobody reads is dead code and would hash as its
    # parent, so an insert that defines a new variable also rewires one later read to it;
    # every other statement is left as it was.
    rng, kinds = np.random.default_rng(11), infer_kinds(ADAMW).kinds
    names = {s.target for s in ADAMW.statements} | set(ADAMW.params)
    spliced = 0
    for _ in range(400):
        child, _ = insert(ADAMW, kinds, rng, splice=True)
        if child is None:
            continue
        index, new = next((i, s) for i, (s, t) in
                          enumerate(zip(child.statements, (*ADAMW.statements, None))) if s != t)
        if new.target in names:
            continue
        rest = child.statements[:index] + child.statements[index + 1:]
        changed = [(a, b) for a, b in zip(ADAMW.statements, rest) if a != b]
        assert len(changed) == 1, changed
        (before, after), = changed
        diff = [(x, y) for x, y in zip(before.args, after.args) if x != y]
        assert len(diff) == 1 and diff[0][1] == new.target
        spliced += 1
    assert spliced > 50


def test_one_insert_takes_signum_to_lion_form():
    # Lion is Signum whose update reads a second interpolation of g and m: with the splice, a
    # single insert proposes it (before it, two mutations with a dead intermediate).
    signum = load_reference("signum")
    rng, kinds = np.random.default_rng(12), infer_kinds(signum).kinds

    def lion_form(child):
        defs = {s.target: s for s in child.statements}
        for s in child.statements:
            inner = defs.get(s.args[0]) if s.op == "sign" and s.args else None
            if (inner is not None and inner.op == "interp" and inner.target not in signum.params
                    and {"g", "m"} <= set(inner.args[:2])):
                return True
        return False

    for _ in range(30000):
        child, _ = insert(signum, kinds, rng, splice=True)
        if child is not None and is_valid(child) and lion_form(child):
            return
    pytest.fail("no Lion-form child in 30000 inserts")


def test_without_the_splice_every_insert_the_mutator_returns_overwrites_a_variable():
    # The default (`mutation.splice = false`): a new variable is dead code, so it would hash as
    # the parent and be retried; with the splice, inserts into new variables do come back.
    names = {s.target for s in ADAMW.statements} | set(ADAMW.params)

    def targets(splice):
        rng = np.random.default_rng(13)
        mutator = Mutator(MutationConfig(splice=splice, delete_weight=0, modify_weight=0,
                                         replace_weight=0))
        return {m.detail.split(": ")[1].split(" =")[0]
                for m in (mutator.mutate(ADAMW, rng) for _ in range(200))}

    assert targets(False) <= names
    assert targets(True) - names

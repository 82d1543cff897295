"""Every disguise of a known rule reaches its name: the sign normal forms of
`primitives.symbolic` and the recognition of lr schedule transforms.

Disguises are generated from the shipped references (primitives/programs/*.py): the
momentum written as arithmetic instead of `interp`, nested interpolations, the sign written
as a scaled ratio `c * x / |x|`, as `x / sqrt(c * x ** 2)` or as `sign(f(x))` for an odd
increasing f, and state slots in another order. Each keeps the program's updates, so
simplification must give back the reference's name and hyperparameters.
"""

import math

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import REFERENCES

from optsearch.primitives.analysis import check
from optsearch.primitives.parser import parse
from optsearch.primitives.program import Program, Statement
from optsearch.primitives.reference import load_reference
from optsearch.primitives.symbolic import normalise_signs
from optsearch.search.distill.recognize import recognize
from optsearch.search.distill.simplify import equivalent, simplify

ODD_INCREASING = ("arctanh", "arcsinh", "tanh", "sinh", "arctan", "cbrt", "cube")
SIGN_FORMS = ("scaled_ratio", "sqrt_of_scaled_square") + ODD_INCREASING


# ---------------------------------------------------------------- disguises
class _Names:
    def __init__(self, program: Program):
        self.taken = set(program.params) | {s.target for s in program.statements}
        self.k = 0

    def fresh(self) -> str:
        while True:
            self.k += 1
            if f"d{self.k}" not in self.taken:
                self.taken.add(f"d{self.k}")
                return f"d{self.k}"


def _rewrite(program: Program, one) -> Program:
    """Replace each statement s by the statements one(s, names) gives (None: keep s)."""
    names = _Names(program)
    out = []
    for stmt in program.statements:
        out.extend(one(stmt, names) or [stmt])
    return program.replace_statements(out)


def nested_interp(program: Program, split: float) -> Program:
    """interp(x, y, b) -> interp(x, interp(x, y, a), b / a) with a = b ** split."""
    def one(s, names):
        if s.op != "interp" or isinstance(s.args[2], str) or not 0 < s.args[2] < 1:
            return None
        x, y, b = s.args
        a, inner = b ** split, names.fresh()
        return [Statement(inner, "interp", (x, y, a)), Statement(s.target, "interp",
                                                                 (x, inner, b / a))]
    return _rewrite(program, one)


def interp_as_arithmetic(program: Program) -> Program:
    """interp(x, y, b) -> x * (1 - b) + y * b."""
    def one(s, names):
        if s.op != "interp" or isinstance(s.args[2], str):
            return None
        x, y, b = s.args
        p, q = names.fresh(), names.fresh()
        return [Statement(p, "mul", (x, 1.0 - b)), Statement(q, "mul", (y, b)),
                Statement(s.target, "add", (p, q))]
    return _rewrite(program, one)


def disguised_sign(program: Program, form: str, c: float) -> Program:
    """sign(x) -> the same value written another way (up to the eps of the safe division)."""
    def one(s, names):
        if s.op != "sign":
            return None
        (x,) = s.args
        t, u = names.fresh(), names.fresh()
        if form == "scaled_ratio":  # c * x / |x| / c
            return [Statement(t, "abs", (x,)), Statement(u, "mul", (x, c)),
                    Statement(u, "div", (u, t)), Statement(s.target, "mul", (u, 1.0 / c))]
        if form == "sqrt_of_scaled_square":  # x / sqrt(c * x^2) * sqrt(c)
            return [Statement(t, "square", (x,)), Statement(t, "mul", (t, c)),
                    Statement(t, "sqrt", (t,)), Statement(u, "div", (x, t)),
                    Statement(s.target, "mul", (u, math.sqrt(c)))]
        return [Statement(t, form, (x,)), Statement(s.target, "sign", (t,))]
    return _rewrite(program, one)


def permuted_slots(program: Program, order) -> Program:
    """The same program with its state slots in another order (parameters and returns)."""
    slots = [program.slots[k] for k in order]
    returns = (program.returns[0], *(program.returns[1 + k] for k in order))
    return Program((program.weight, program.grad, *slots, program.lr), program.statements,
                   returns, program.name)


@st.composite
def disguises(draw):
    name = draw(st.sampled_from(sorted(REFERENCES)))
    program = load_reference(name)
    if draw(st.booleans()):
        program = nested_interp(program, draw(st.floats(0.3, 0.7)))
    if draw(st.booleans()):
        program = interp_as_arithmetic(program)
    program = disguised_sign(program, draw(st.sampled_from(SIGN_FORMS)),
                             draw(st.floats(0.05, 20.0)))
    order = draw(st.permutations(range(program.n_slots)))
    return name, permuted_slots(program, order)


# The algebra moves the eps of Adam's bias-corrected division (m / sqrt(v / bc2) becomes
# m * sqrt(bc2) / sqrt(v)), which moves its fitted lr by ~3e-6; recognition's own check is 1e-4.
EPS_MOVED_REL = 1e-4


def assert_reference(result, name, rel=1e-6):
    expected_name, expected = REFERENCES[name]
    rec = result.recognition
    assert rec.name == expected_name and rec.schedule == ""
    assert set(rec.hyperparameters) == set(expected)
    for key, value in expected.items():
        assert rec.hyperparameters[key] == pytest.approx(value, rel=rel, abs=1e-12), key


# ---------------------------------------------------------------- property
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(disguises())
def test_random_disguises_of_the_references_simplify_back_to_them(case):
    """Rule: a program that computes a shipped reference's updates, however written, is
    recognised as that reference with the reference's hyperparameters."""
    name, program = case
    check(program)
    assert equivalent(program, load_reference(name))
    assert_reference(simplify(program), name, rel=EPS_MOVED_REL if name == "adam" else 1e-6)


@pytest.mark.parametrize("form", SIGN_FORMS)
def test_every_sign_form_of_lion_is_lion(form):
    """Rule: each disguise of the sign, alone, still gives Lion (no draw may skip one)."""
    assert_reference(simplify(disguised_sign(load_reference("lion"), form, 0.3)), "lion")


def test_lion_with_arithmetic_momentum_nested_interp_and_swapped_slots_is_lion():
    """Rule: the momentum as plain arithmetic, split into nested EMAs, in a second slot."""
    program = parse("""def train(w, g, junk, m, lr):
    a = m * 0.99
    b = g * 0.01
    m2 = a + b
    c = interp(g, m, 0.95)
    c = interp(g, c, 0.9473684210526316)
    t = arcsinh(c)
    u = sign(t)
    wd = w * 0.1
    u = u + wd
    lr = lr * 0.0001
    u = u * lr
    return u, junk, m2
""")
    assert_reference(simplify(program), "lion")


# ---------------------------------------------------------------- sympy normal forms
@pytest.mark.parametrize("build", [
    lambda x, lr: 3 * x / sympy.Abs(x),
    lambda x, lr: x / sympy.sqrt(sympy.Abs(0.5 * x ** 2)),
    lambda x, lr: sympy.atanh(x) / sympy.sqrt(sympy.Abs(sympy.atanh(x) ** 2 * lr)) * sympy.sqrt(lr),
    lambda x, lr: sympy.sign(sympy.atanh(x)),
    lambda x, lr: sympy.sign(sympy.tanh(sympy.asinh(x))),
    lambda x, lr: sympy.sign(sympy.sign(x) * sympy.Abs(x) ** sympy.Rational(1, 3)),
    lambda x, lr: sympy.sign(x ** 3),
    lambda x, lr: sympy.sign(sympy.exp(x) - 1),
])
def test_sign_normal_form_reaches_sign(build):
    """Rule: scaled ratios, square roots of scaled squares and odd increasing functions
    inside a sign all normalise to sign(x) (positive scales aside)."""
    x, lr = sympy.Symbol("x", real=True), sympy.Symbol("lr", nonnegative=True)
    form = normalise_signs(build(x, lr))
    coeff, rest = form.as_coeff_Mul()
    assert rest == sympy.sign(x) and coeff > 0


def test_tan_is_not_taken_out_of_a_sign():
    """Rule: tan is odd but not monotone: sign(tan(x)) is not sign(x)."""
    x = sympy.Symbol("x", real=True)
    assert normalise_signs(sympy.sign(sympy.tan(x))) == sympy.sign(sympy.tan(x))


# ---------------------------------------------------------------- schedules
def test_main_job_disguise_is_signsgd_with_a_sqrt_schedule():
    """Rule: the main job's `arctanh(g) / sqrt(square(arctanh(g)) * lr)` find is signSGD
    with a square-root lr schedule, not a new optimizer."""
    program = parse("""def train(w, g, lr):
    a = arctanh(g)
    b = square(a)
    b = b * lr
    b = sqrt(b)
    u = a / b
    u = u * 0.0115
    u = u * lr
    return u
""")
    rec = simplify(program).recognition
    assert (rec.name, rec.schedule) == ("signSGD", "sqrt(lr)")
    assert rec.label == "signSGD with a sqrt(lr) schedule"
    assert rec.hyperparameters == {"lr": 0.0115, "weight_decay": 0.0}
    assert equivalent(rec.program, program)  # what the export ships reproduces the find


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_a_reference_under_a_sqrt_schedule_keeps_its_name_and_hyperparameters(name):
    """Rule: a schedule transform of lr is reported as the schedule of the known rule."""
    text = load_reference(name)
    stmts = list(text.statements)
    at = next(i for i, s in enumerate(stmts) if s.target == text.lr)
    stmts.insert(at, Statement(text.lr, "sqrt", (text.lr,)))
    program = text.replace_statements(stmts)
    rec = recognize(simplify(program).program)
    expected_name, expected = REFERENCES[name]
    assert (rec.name, rec.schedule) == (expected_name, "sqrt(lr)")
    rel = EPS_MOVED_REL if name == "adam" else 1e-6
    for key, value in expected.items():
        assert rec.hyperparameters[key] == pytest.approx(value, rel=rel, abs=1e-12), key
    assert equivalent(rec.program, program)

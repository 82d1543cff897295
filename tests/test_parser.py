"""The program grammar (docs/primitives.md): what parses, what is rejected (with a line), and round trips."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optsearch.primitives import Program, ProgramError, Statement, format_program, parse
from optsearch.primitives.analysis import G, P, T, check, infer_kinds, value_kinds
from optsearch.primitives.parser import MAX_BYTES, decode
from optsearch.primitives.pool import POOL
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference, reference_text
from optsearch.search.mutation import Mutator

ADAMW = reference_text("adamw")


def _reject(text, line=None, fragment=None):
    with pytest.raises(ProgramError) as info:
        check(parse(text))
    if line is not None:
        assert info.value.line == line, info.value.message
    if fragment is not None:
        assert fragment in info.value.message
    return info.value


def test_reference_programs_parse_and_round_trip():
    for name in REFERENCE_NAMES:
        program = load_reference(name)
        assert parse(format_program(program)) == program
        assert format_program(parse(format_program(program))) == format_program(program)


def test_signature_roles():
    p = load_reference("adamw")
    assert (p.weight, p.grad, p.slots, p.lr) == ("w", "g", ("m", "v"), "lr")
    assert p.n_slots == 2 and p.returns == ("update", "m", "v")


def test_program_without_state_slots():
    p = parse("def train(w, g, lr):\n    u = g * lr\n    return u\n")
    assert p.n_slots == 0 and p.returns == ("u",)


def test_constants_canonical_format():
    p = parse("def f(w, g, lr):\n    u = g * 1e-3\n    u = u * 2\n    u = u * -0.5\n    return u\n")
    text = format_program(p)
    assert "g * 0.001" in text and "u * 2.0" in text and "u * -0.5" in text


def test_unary_minus_and_named_infix_forms():
    p = parse("def f(w, g, lr):\n    a = -g\n    b = add(a, g)\n    c = --0.5\n    u = b * c\n"
              "    return u\n")
    assert [s.op for s in p.statements] == ["neg", "add", "neg", "mul"]
    assert p.statements[2].args == (-0.5,)
    assert parse(format_program(p)) == p


@pytest.mark.parametrize("body, line, fragment", [
    ("    import os\n    return g", 2, "only assignments"),
    ("    x = w.data\n    return x", 2, "right-hand side"),
    ("    x = w[0]\n    return x", 2, "right-hand side"),
    ("    x = foo(g)\n    return x", 2, "unknown function"),
    ("    x = clip(g, c=1.0)\n    return x", 2, "keyword"),
    ("    for i in g:\n        x = g\n    return x", 2, "only assignments"),
    ("    if g:\n        x = g\n    return g", 2, "only assignments"),
    ("    x = sign('a')\n    return x", 2, "arguments must be"),
    ("    x = sign(y)\n    return x", 2, "read before"),
    ("    x = sign(g, g)\n    return x", 2, "takes 1"),
    ("    x = sign(g)\n    return x, x", 3, "return must give"),
    ("    x = lambda: g\n    return x", 2, "right-hand side"),
    ("    x = [a for a in g]\n    return x", 2, "right-hand side"),
    ("    x = sign(sign(g))\n    return x", 2, "arguments must be"),
    ("    x = g ** 2.0\n    return x", 2, "right-hand side"),
    ("    x = g * 1e999\n    return x", 2, "finite"),
    ("    x = g * True\n    return x", 2, "arguments must be"),
    ("    __x = sign(g)\n    return __x", 2, "invalid name"),
    ("    sign = sign(g)\n    return sign", 2, "is a function of the pool"),
    ("    x = sign\n    return x", 2, "right-hand side"),
    ("    'doc'\n    return g", 2, "only assignments"),
    ("    x, y = g, g\n    return x", 2, "exactly one plain variable"),
    ("    x = sign(g)\n    return x + 1", 3, "variable names"),
])
def test_rejected_constructs_name_the_line(body, line, fragment):
    _reject(f"def train(w, g, lr):\n{body}\n", line, fragment)


@pytest.mark.parametrize("text, fragment", [
    ("import os\n" + ADAMW, "exactly one 'def'"),
    (ADAMW + "x = 1\n", "exactly one 'def'"),
    ("def train(w, g):\n    return g\n", "signature"),
    ("def train(w, g, lr=1.0):\n    return g\n", "plain positional"),
    ("def train(w, g, *s, lr):\n    return g\n", "plain positional"),
    ("@dec\ndef train(w, g, lr):\n    return g\n", "decorators"),
    ("def train(w, g, lr):\n    x = sign(g)\n", "must end with a return"),
    ("def train(w, g, lr):\n    return\n", "return must give"),
    ("def train(w, w, lr):\n    return w\n", "duplicate parameter"),
    ("def train(w, g, lr)\n    return g\n", "syntax error"),
])
def test_rejected_program_shapes(text, fragment):
    _reject(text, fragment=fragment)


def test_hostile_text_is_rejected_without_running(tmp_path):
    marker = tmp_path / "pwned"
    _reject(f"def train(w, g, lr):\n    x = __import__('os').system('touch {marker}')\n"
            "    return x\n", 2)
    _reject(f"__import__('os').system('touch {marker}')\n", 1)
    assert not marker.exists()


def test_huge_and_deep_inputs_are_rejected_quickly():
    _reject("def train(w, g, lr):\n" + "    x = sign(g)\n" * 60_000 + "    return x\n",
            fragment="larger than")
    _reject("def train(w, g, lr):\n    x = " + "(" * 5000 + "g" + ")" * 5000 + "\n"
            "    return x\n")
    _reject("def train(w, g, lr):\n    x = g * " + "9" * 400 + "\n    return x\n",
            fragment="finite")


def test_kind_errors():
    _reject("def train(w, g, lr):\n    n = norm(lr)\n    return g\n", 2, "must be a tensor")
    _reject("def train(w, g, lr):\n    u = norm(g)\n    return u\n", fragment="update must be")
    _reject("def train(w, g, m, lr):\n    u = g * lr\n    m = norm(g)\n    return u, m\n",
            fragment="state slot 'm' must be a tensor")
    _reject("def train(w, g, lr):\n    u = w * lr\n    return u\n",
            fragment="does not depend on the gradient")


def test_scalar_where_a_scalar_is_required_names_the_tensor():
    _reject("def train(w, g, lr):\n    u = clip(g, g)\n    return u\n", 2,
            "argument 2 of clip() must be a scalar, 'g' is a tensor")


def test_one_kind_inference_refines_tensor_and_scalar():
    """value_kinds is the only kind inference: a reduction gives a per-parameter scalar (P), lr
    and constants group scalars (G), a uniform slot is P; the checker's tensor/scalar kinds are
    its projection, and a uniform slot reaching a tensor-only argument is a mismatch."""
    program = parse("def train(w, g, m, lr):\n    n = norm(g)\n    k = pi()\n    c = k * lr\n"
                    "    s = m + n\n    d = dot(s, g)\n    u = g * c\n    return u, m\n")
    values = value_kinds(program)
    assert values.inputs == (T, T, T, G)
    assert values.statements == (P, G, G, T, P, T)
    assert values.mismatches == ()
    assert infer_kinds(program).kinds == ("scalar",) * 3 + ("tensor", "scalar", "tensor")
    uniform = value_kinds(program, uniform_slots={0})
    assert uniform.inputs == (T, T, P, G) and uniform.statements[3] == P
    assert uniform.names["m"] == P
    assert uniform.mismatches == ((4, 0),)  # dot(s, g) needs s as a tensor


def test_gradient_dependence_through_state_is_accepted():
    # The update reads only m, but m was written from g in the previous call.
    check(parse("def train(w, g, m, lr):\n    u = sign(m)\n    m = interp(g, m, 0.9)\n"
                "    return u, m\n"))


# -- property test: every program built from the grammar round-trips -------------------------

_UNARY = sorted(n for n, p in POOL.items() if p.arity == 1 and not p.reduces)


@st.composite
def programs(draw):
    names = ["w", "g", "m", "lr"]
    lines = []
    for i in range(draw(st.integers(1, 8))):
        arg = st.one_of(st.sampled_from(names),
                        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
        form = draw(st.sampled_from(["call", "infix", "neg"]))
        target = draw(st.sampled_from(names[1:] + [f"t{i}"]))
        if form == "call":
            op = draw(st.sampled_from(_UNARY))
            a = draw(arg)
            expr = f"{op}({a if isinstance(a, str) else repr(a)})"
        elif form == "infix":
            a, b = draw(arg), draw(arg)
            sym = draw(st.sampled_from("+-*/"))
            expr = f"{a if isinstance(a, str) else repr(a)} {sym} {b if isinstance(b, str) else repr(b)}"
        else:
            a = draw(arg)
            expr = f"-{a if isinstance(a, str) else repr(a)}"
        lines.append(f"    {target} = {expr}")
        if target not in names:
            names.append(target)
    return "def train(w, g, m, lr):\n" + "\n".join(lines) + "\n    return g, m\n"


@settings(max_examples=200, deadline=None)
@given(programs())
def test_parse_format_round_trip(text):
    program = parse(text)
    assert parse(format_program(program)) == program


# -- property tests over the model itself: every op of the pool, any finite constant ---------

_CONSTANTS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: abs(x) < 1e300)
_NAMES = ["w", "g", "m", "v", "lr", "u", "x1", "t2", "update"]


@st.composite
def models(draw):
    """A `Program` built directly (as the mutator and the simplifier do), over the whole pool."""
    params = ("w", "g", "m", "v", "lr")
    defined = list(params)
    statements = []
    for _ in range(draw(st.integers(0, 10))):
        op = draw(st.sampled_from(sorted(POOL)))
        args = tuple(draw(st.one_of(st.sampled_from(defined), _CONSTANTS))
                     for _ in range(POOL[op].arity))
        target = draw(st.sampled_from(_NAMES))
        statements.append(Statement(target, op, args))
        defined.append(target)
    returns = tuple(draw(st.sampled_from(defined)) for _ in range(3))
    return Program(params, tuple(statements), returns)


@settings(max_examples=300, deadline=None)
@given(models())
def test_model_format_parse_round_trip_over_the_whole_pool(program):
    text = format_program(program)
    assert parse(text) == program
    assert format_program(parse(text)) == text  # the canonical form is a fixed point


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(REFERENCE_NAMES), st.integers(0, 2**32 - 1), st.integers(1, 25))
def test_mutator_children_round_trip(start, seed, generations):
    # The contract is about what the mutator produces: follow a random lineage and check
    # every child (all pool ops, fresh constants N(0,1), jittered constants c * 2^N(0,1)).
    rng, mutator = np.random.default_rng(seed), Mutator()
    program = load_reference(start)
    for _ in range(generations):
        program = mutator.mutate(program, rng).child
        text = format_program(program)
        assert parse(text) == program
        assert format_program(parse(text)) == text
        check(parse(text))


def test_canonical_constants():
    p = parse("def f(w, g, lr):\n    u = g * 0x10\n    u = u * 1_000\n    u = u * 1E-3\n"
              "    u = u * .5\n    u = u * 5e-324\n    u = u * -0.0\n    return u\n")
    assert [s.args[1] for s in p.statements][:5] == [16.0, 1000.0, 0.001, 0.5, 5e-324]
    assert math.copysign(1.0, p.statements[5].args[1]) == -1.0
    assert "g * 16.0\n" in format_program(p) and "u * -0.0\n" in format_program(p)


@pytest.mark.parametrize("text", [
    "\ufeffdef train(w, g, lr):\n    u = sign(g)\n    return u\n",  # byte-order mark
    "def train(w, g, lr):\r\n    u = sign(g)\r\n    return u\r\n",  # CRLF
    "def train(w, g, lr):\n\tu = sign(g)\n\treturn u",  # tabs, no final newline
    "# c\ndef train(w, g, lr):  # c\n    # c\n    u = sign(g)  # c\n\n    return u  # c\n",
    "def train(w, g, lr): return g\n",
    "def train(w, g, lr):\n    u = sign(g); u = u * lr\n    return (u)\n",
    "def train(w, g, m, lr):\n    lr = g * lr\n    u = sign(lr)\n    return (u, m)\n",
])
def test_accepted_layouts(text):
    check(parse(text))


@pytest.mark.parametrize("body, line, col, fragment", [
    ("    m += g\n    return g", 2, 5, "augmented assignment"),
    ("    x: int = sign(g)\n    return x", 2, 5, "annotated assignment"),
    ("    '''doc'''\n    return g", 2, 5, "bare expression"),
    ("    (x := g)\n    return g", 2, 5, "bare expression"),
    ("    x = sign((y := g))\n    return x", 2, 15, "arguments must be"),
    ("    x = max(*g)\n    return x", 2, 9, "takes 2"),
    ("    x = sign(*g)\n    return x", 2, 14, "arguments must be"),
    ("    x = g * 1j\n    return x", 2, 13, "arguments must be"),
    ("    x = g * None\n    return x", 2, 13, "arguments must be"),
    ("    a = b = sign(g)\n    return a", 2, 9, "exactly one plain variable"),
    ("    x = sign(g)\n    return x\n    x = abs(g)\n    return x", 3, 5, "return before the end"),
    ("    x = g * y\n    return x", 2, 13, "'y' is read before"),
    ("    x = os.system(g)\n    return x", 2, 9, "only functions of the pool"),
    ("    x = clip(g, c=lr)\n    return x", 2, 17, "keyword"),
    ("    x = relu(g)\n    return x", 2, 9, "unknown function"),
    ("    x = sign(g)\n    return x, x", 3, 5, "return must give"),
    ("    x = sign(g)\n    return z", 3, 12, "'z' is returned before"),
    ("    n = norm(lr)\n    return g", 2, 9, "must be a tensor"),
    ("    n = norm(g)\n    k = mean(n)\n    u = g * k\n    return u", 3, 9, "must be a tensor"),
])
def test_rejections_carry_line_and_column(body, line, col, fragment):
    err = _reject(f"def train(w, g, lr):\n{body}\n", line, fragment)
    assert err.col == col, (err.col, err.message)


@pytest.mark.parametrize("text, line, fragment", [
    ("async def train(w, g, lr):\n    u = sign(g)\n    return u\n", 1, "exactly one 'def'"),
    ("def train(w, g, lr):\n    u = sign(g)\n    return u\ndef f(w, g, lr):\n    return g\n",
     4, "exactly one 'def'"),
    ("def train(w, g, lr) -> int:\n    return g\n", 1, "annotations"),
    ("def train(w, g: int, lr):\n    return g\n", 1, "annotations"),
    ("def train(w, g, /, lr):\n    return g\n", 1, "plain positional"),
    ("def train(w, g, *, lr):\n    return g\n", 1, "plain positional"),
    ("def train(w, g, **lr):\n    return g\n", 1, "plain positional"),
    ("def __init__(w, g, lr):\n    return g\n", 1, "invalid name"),
    ("def train(w, __g, lr):\n    return __g\n", 1, "invalid name"),
    ("def train(w, g, lr):\n    u = sign(g)\x00\n    return u\n", 2, "NUL"),
    ("def train(w, g, lr):\n    u = sign(g)\n\treturn u\n", 3, "syntax error"),
    ("def train(w, g, lr):\n    u = g * " + "9" * 5000 + "\n    return u\n", 2, "syntax error"),
    ("", 1, "exactly one 'def'"),
    ("\n  \n", 1, "exactly one 'def'"),
    ("def train(w, g, lr): ...\n", 1, "end with a return"),
])
def test_rejected_program_shapes_name_the_line(text, line, fragment):
    _reject(text, line, fragment)


@pytest.mark.parametrize("expr", ["-" * 100_000 + "g", "g" + " + g" * 40_000,
                                  "not " * 40_000 + "g", "(" * 100_000 + "g" + ")" * 100_000,
                                  "sign(" * 30_000 + "g" + ")" * 30_000])
def test_deep_nesting_is_one_error_on_its_line(expr):
    text = f"def train(w, g, lr):\n    v = sign(g)\n    u = {expr}\n    return u\n"
    err = _reject(text)
    assert err.line == (1 if len(text) > MAX_BYTES else 3), err.message


def test_decode_checks_size_before_utf8_and_names_the_bad_byte():
    big = ("# " + "é" * 200_000 + "\n").encode()[: MAX_BYTES + 1]  # cut inside a character
    with pytest.raises(ProgramError, match="larger than"):
        decode(big)
    with pytest.raises(ProgramError) as info:
        decode(b"def train(w, g, lr):\n    u = sign(g)\xff\n    return u\n")
    assert (info.value.line, info.value.col) == (2, 16)
    assert decode("\ufeffdef".encode("utf-8")) == "def"  # the BOM is dropped

"""The grammar of DESIGN.md §3: what parses, what is rejected (with a line), and round trips."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives import ProgramError, format_program, parse
from primitives.analysis import check
from primitives.pool import POOL
from primitives.reference import REFERENCE_NAMES, load_reference, reference_text

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

"""Recognition of known optimizers: reference programs, perturbed variants, and "new"."""

import pytest
from support import REFERENCES

from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.primitives.reference import load_reference, reference_text
from optsearch.search.distill.recognize import recognize


def assert_hyper(found: dict, expected: dict, rel=1e-6):
    assert set(found) == set(expected)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, rel=rel, abs=1e-12), key


@pytest.mark.parametrize("ref", sorted(REFERENCES))
def test_reference_programs_are_recognised(ref):
    name, hyper = REFERENCES[ref]
    rec = recognize(load_reference(ref))
    assert rec.name == name
    assert_hyper(rec.hyperparameters, hyper)


@pytest.mark.parametrize("ref", sorted(REFERENCES))
def test_bindings_point_at_the_hyperparameters_in_the_template_program(ref):
    rec = recognize(load_reference(ref))
    assert rec.bindings
    assert set(rec.bindings.values()) == set(rec.hyperparameters)
    for (i, pos), name in rec.bindings.items():
        assert rec.program.statements[i].args[pos] == pytest.approx(rec.hyperparameters[name])


def _perturbed(ref: str, replace: dict, rename: dict) -> str:
    """The reference text with constants replaced and variables renamed (whole words)."""
    import re
    text = reference_text(ref)
    for old, new in replace.items():
        text = re.sub(rf"(?<![\w.]){re.escape(old)}(?![\w.])", new, text)
    for old, new in rename.items():
        text = re.sub(rf"\b{old}\b", new, text)
    return text


PERTURBED = [
    ("lion", {"0.9": "0.95", "0.99": "0.98", "0.1": "0.2", "0.0001": "0.0003"},
     {"m": "mom", "update": "step", "w": "theta"},
     "Lion", {"beta1": 0.95, "beta2": 0.98, "weight_decay": 0.2, "lr": 3e-4}),
    ("adamw", {"0.9": "0.8", "0.999": "0.99", "0.01": "0.05", "0.001": "0.002"},
     {"m": "first", "v": "second", "g": "grad"},
     "AdamW", {"beta1": 0.8, "beta2": 0.99, "weight_decay": 0.05, "lr": 2e-3}),
    ("signum", {"0.9": "0.85", "0.1": "0.0", "0.0001": "0.001"}, {"m": "buf"},
     "Signum", {"beta": 0.85, "weight_decay": 0.0, "lr": 1e-3}),
    ("sgdm", {"0.9": "0.7", "0.01": "0.3"}, {"m": "velocity", "lr": "schedule"},
     "SGD-M", {"momentum": 0.7, "lr": 0.3}),
    ("rmsprop", {"0.99": "0.9", "0.01": "0.001"}, {"v": "sq"},
     "RMSProp", {"alpha": 0.9, "lr": 1e-3}),
    ("adagrad", {"0.01": "0.5"}, {"s": "acc"}, "AdaGrad", {"lr": 0.5}),
    ("adabelief", {"0.9": "0.85", "0.999": "0.995", "0.01": "0.0", "0.001": "0.004"},
     {"m": "a", "v": "b"},
     "AdaBelief", {"beta1": 0.85, "beta2": 0.995, "weight_decay": 0.0, "lr": 4e-3}),
    ("adam", {"0.9": "0.85", "0.999": "0.98", "0.001": "0.01"}, {"t": "count"},
     "Adam", {"beta1": 0.85, "beta2": 0.98, "lr": 0.01}),
]


@pytest.mark.parametrize("ref,replace,rename,name,hyper", PERTURBED,
                         ids=[p[0] for p in PERTURBED])
def test_perturbed_variants_are_recognised_with_their_constants(ref, replace, rename, name,
                                                                 hyper):
    rec = recognize(parse(_perturbed(ref, replace, rename)))
    assert rec.name == name
    assert_hyper(rec.hyperparameters, hyper)


def test_lion_with_equal_betas_is_signum():
    text = reference_text("lion").replace("0.99", "0.9")
    rec = recognize(parse(text))
    assert rec.name == "Signum"
    assert_hyper(rec.hyperparameters, {"beta": 0.9, "weight_decay": 0.1, "lr": 1e-4})
    assert format_program(rec.program).count("interp") == 1  # the signum.py layout


def test_lion_without_weight_decay_has_weight_decay_zero():
    rec = recognize(parse("""def train(w, g, m, lr):
    c = interp(g, m, 0.9)
    d = sign(c)
    m = interp(g, m, 0.99)
    s = lr * 0.0003
    u = d * s
    return u, m
"""))
    assert rec.name == "Lion"
    assert_hyper(rec.hyperparameters, {"beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0,
                                       "lr": 3e-4})


def test_unnormalised_momentum_is_rescaled():
    # m = g + 0.99 m holds 100x an EMA: sign(0.1 g + 0.009 m) is Lion's beta1 = 0.9.
    rec = recognize(parse("""def train(w, g, m, lr):
    a = g * 0.1
    b = m * 0.009
    c = a + b
    u = sign(c)
    n = m * 0.99
    m = n + g
    u = u * lr
    return u, m
"""))
    assert rec.name == "Lion"
    assert_hyper(rec.hyperparameters, {"beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0,
                                       "lr": 1.0})


def test_ema_momentum_is_sgd_m_with_scaled_lr():
    # Dampened momentum (an EMA) is heavy-ball momentum with lr scaled by (1 - beta).
    rec = recognize(parse("""def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    lr = lr * 0.5
    u = m * lr
    return u, m
"""))
    assert rec.name == "SGD-M"
    assert_hyper(rec.hyperparameters, {"momentum": 0.9, "lr": 0.05})


def test_slot_order_does_not_matter():
    text = reference_text("adamw").replace("(w, g, m, v, lr)", "(w, g, v, m, lr)") \
        .replace("return update, m, v", "return update, v, m")
    rec = recognize(parse(text))
    assert rec.name == "AdamW"
    assert_hyper(rec.hyperparameters, REFERENCES["adamw"][1])


@pytest.mark.parametrize("text", [
    # sign of the raw gradient plus a tanh of the momentum: no template
    """def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    a = tanh(m)
    b = sign(g)
    u = a + b
    u = u * lr
    return u, m
""",
    # Lion's shape but the momentum decays towards |g|
    """def train(w, g, m, lr):
    a = abs(g)
    m = interp(a, m, 0.99)
    c = interp(g, m, 0.9)
    u = sign(c)
    u = u * lr
    return u, m
""",
])
def test_novel_programs_are_new(text):
    rec = recognize(parse(text))
    assert rec.name == "new"
    assert rec.hyperparameters == {}


def test_raw_program4_is_not_lion_before_simplification():
    assert recognize(load_reference("program4")).name == "new"


def test_program4_without_preprocessing_is_lion_with_the_exact_product_beta2():
    # The algebra, no rounding: m / sqrt(m * m) is sign(m) and the two interps with 0.899
    # and 1.109 are one EMA with beta2 = 0.899 * 1.109 = 0.996991 (not 0.99).
    text = reference_text("program4").replace("    g = clip(g, lr)\n", "") \
        .replace("    g = arcsin(g)\n", "")
    rec = recognize(parse(text))
    assert rec.name == "Lion"
    assert_hyper(rec.hyperparameters, {"beta1": 0.899, "beta2": 0.899 * 1.109,
                                       "weight_decay": 0.4602, "lr": 2e-4})


# ---------------------------------------------------------------- stateless templates
@pytest.mark.parametrize("text,name,hyper", [
    ("""def train(theta, grad, sched):
    d = sign(grad)
    k = theta * 0.3
    d = d + k
    sched = sched * 0.005
    d = d * sched
    return d
""", "signSGD", {"weight_decay": 0.3, "lr": 0.005}),
    ("""def train(w, g, lr):
    a = w * 0.001
    b = g + a
    c = lr * 0.2
    u = b * c
    return u
""", "SGD", {"weight_decay": 0.001, "lr": 0.2}),
    ("""def train(w, g, lr):
    u = g * lr
    return u
""", "SGD", {"weight_decay": 0.0, "lr": 1.0}),
])
def test_stateless_programs_are_sgd_or_signsgd(text, name, hyper):
    rec = recognize(parse(text))
    assert rec.name == name
    assert_hyper(rec.hyperparameters, hyper)
    assert set(rec.bindings.values()) == set(rec.hyperparameters)
    assert rec.program.n_slots == 0


@pytest.mark.parametrize("text", [
    """def train(w, g, lr):
    u = tanh(g)
    u = u * lr
    return u
""",
    # sign descent that ignores the lr schedule: no template (the outcome probe's case)
    """def train(w, g, lr):
    u = sign(g)
    u = u * 0.01
    return u
""",
])
def test_other_stateless_programs_are_new(text):
    assert recognize(parse(text)).name == "new"


def test_lion_with_a_positive_factor_inside_the_sign_is_lion():
    # sign(2 c exp(w)) is sign(c): the recogniser's algebra drops positive factors too
    rec = recognize(parse("""def train(w, g, m, lr):
    c = interp(g, m, 0.9)
    p = exp(w)
    c = c * p
    c = c * 2.0
    d = sign(c)
    m = interp(g, m, 0.99)
    u = d * lr
    return u, m
"""))
    assert rec.name == "Lion"
    assert_hyper(rec.hyperparameters, {"beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0,
                                       "lr": 1.0})


@pytest.mark.parametrize("beta2", [0.99, 0.9])
def test_lion_with_beta1_one_is_lagged_signum_never_lion(beta2):
    """Rule: Lion with beta1 = 1 takes its update from the momentum before this step's
    gradient enters it: that is Signum lagged by one step ("LaggedSignum"), never "Lion"."""
    text = reference_text("lion").replace("interp(g, m, 0.9)", "interp(g, m, 1.0)") \
        .replace("0.99", str(beta2))
    rec = recognize(parse(text))
    assert rec.name == "LaggedSignum"
    assert_hyper(rec.hyperparameters, {"beta": beta2, "weight_decay": 0.1, "lr": 1e-4})
    assert format_program(rec.program).splitlines()[1].strip() == "update = sign(m)"


def test_lagged_signum_written_directly_is_recognised():
    """Rule: the sign of the previous momentum, the momentum updated after it."""
    rec = recognize(parse("""def train(w, g, m, lr):
    u = sign(m)
    m = m * 0.95
    k = g * 0.05
    m = m + k
    u = u * lr
    return u, m
"""))
    assert rec.name == "LaggedSignum" and rec.label == "LaggedSignum"
    assert rec.hyperparameters["beta"] == pytest.approx(0.95)

"""Outcome classes (search.outcome): reference programs and hand-made variants land in the
class the rediscovery benchmark counts them in, through the recogniser and through the
behavioural probe."""

import pytest

from optsearch.primitives.parser import parse
from optsearch.primitives.reference import load_reference, reference_text
from scripts.research.outcome import (
    CLASSES,
    SIGN_ANY,
    SIGN_MOMENTUM,
    classify,
    clear_cache,
    sign_based,
    sign_momentum_class,
)

LION = reference_text("lion")
SIGNUM = reference_text("signum")
ADAMW = reference_text("adamw")


def _lion(beta1: str, beta2: str, text: str = LION) -> str:
    return (text.replace("update = interp(g, m, 0.9)", f"update = interp(g, m, {beta1})")
                .replace("m = interp(g, m, 0.99)", f"m = interp(g, m, {beta2})"))


def _no_schedule(text: str) -> str:
    """The final `update * lr` (lr = schedule * peak) becomes `update * 0.0002`: the rule
    ignores the schedule, which the recogniser's templates cannot express -> the probe."""
    assert "update = update * lr" in text
    return text.replace("update = update * lr", "update = update * 0.0002")


SIGN_G = """def train(w, g, m, lr):
    update = sign(g)
    lr = lr * 0.001
    update = update * lr
    return update, m
"""
# the best program of a real default-suite run: g / sqrt(g^2) = sign(g), schedule ignored
FOUND_SIGN = """def train(w, g, m, v, lr):
    v = norm(m)
    g2 = square(g)
    v = interp(g, 0.8062416755559296, 0.999)
    sqrt_v = sqrt(g2)
    update = g / sqrt_v
    wd = w * 0.004649340542377694
    update = update * 0.0195448400477115
    return update, m, v
"""


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield


# ---------------------------------------------------------------- recogniser path
@pytest.mark.parametrize("ref, cls", [("lion", "lion"), ("signum", "signum"),
                                      ("adamw", "adam_like"), ("adam", "adam_like"),
                                      ("sgdm", "other"), ("program4", "lion")])
def test_reference_programs_land_in_their_class(ref, cls):
    """Rule: the shipped references are the anchors of the classes -- Lion (0.9 < 0.99) is
    lion, Signum signum, AdamW/Adam adam_like, SGD-M other, and the paper's Program 4
    simplifies to Lion (beta1 0.899 < beta2 0.997) and counts as lion."""
    out = classify(load_reference(ref))
    assert out.cls == cls
    assert out.source == "recognised"


def test_lion_with_beta1_above_beta2_is_its_own_class():
    """Rule: Lion's form with beta1 >= beta2 is lion_b1_ge_b2, never lion (the rediscovery
    goal counts only beta1 < beta2)."""
    out = classify(_lion("0.99", "0.9"))
    assert out.cls == "lion_b1_ge_b2"
    assert out.hyperparameters["beta1"] == pytest.approx(0.99)
    assert out.hyperparameters["beta2"] == pytest.approx(0.9)


def test_lion_with_beta1_one_is_lagged_signum_counted_as_sign_momentum():
    """Rule: Lion's form with beta1 = 1 (the update is the sign of the previous momentum) is
    recognised LaggedSignum, never Lion, and counts as sign momentum (one memory)."""
    out = classify(_lion("1.0", "0.9"))
    assert (out.name, out.cls) == ("LaggedSignum", "signum")


def test_sign_of_the_gradient_is_sign_descent():
    """Rule: sign(g) with no momentum is sign_descent, not a sign-momentum class."""
    out = classify(SIGN_G)
    assert out.cls == "sign_descent"
    assert out.cls in SIGN_ANY and out.cls not in SIGN_MOMENTUM


# ---------------------------------------------------------------- probe path
def test_found_sign_program_is_sign_descent_by_probe():
    """Rule: g / sqrt(square(g)) scaled by a constant (schedule ignored, dead code around it)
    is sign descent; the recogniser does not know it, the probe does."""
    out = classify(FOUND_SIGN)
    assert out.source == "probe" and out.cls == "sign_descent"
    assert out.hyperparameters["schedule"] is False
    assert out.hyperparameters["lr"] == pytest.approx(0.0195448400477115, rel=1e-4)


@pytest.mark.parametrize("text, cls, beta1, beta2", [
    (_no_schedule(LION), "lion", 0.9, 0.99),
    (_no_schedule(_lion("0.9", "0.999")), "lion", 0.9, 0.999),
    (_no_schedule(_lion("0.99", "0.9")), "lion_b1_ge_b2", 0.99, 0.9),
    (_no_schedule(SIGNUM), "signum", 0.9, 0.9),
    (_no_schedule(reference_text("program4")), "lion", 0.899, 0.997),
])
def test_probe_classifies_unrecognised_sign_momentum_and_estimates_betas(text, cls, beta1,
                                                                          beta2):
    """Rule: a sign-momentum rule the recogniser misses (it ignores the lr schedule) is
    classified by behaviour, with the effective betas read off the sign-flip thresholds
    (for Program 4 the folded pair 0.899 / 0.997) and the decoupled weight decay."""
    out = classify(text)
    assert out.source == "probe"
    assert out.cls == cls
    hp = out.hyperparameters
    assert hp["beta1"] == pytest.approx(beta1, abs=2e-3)
    assert hp["beta2"] == pytest.approx(beta2, abs=2e-4)
    assert hp["weight_decay"] is not None and hp["weight_decay"] > 0


def test_probe_calls_a_schedule_free_adamw_adam_like_and_sgd_other():
    """Rule: without a sign, scale-invariant element-wise rules with a history (Adam's
    family) are adam_like; SGD-style rules (not scale invariant) are other."""
    assert classify(_no_schedule(ADAMW)).cls == "adam_like"
    sgd = """def train(w, g, m, lr):
    m = m * 0.9
    m = m + g
    update = m * 0.01
    return update, m
"""
    out = classify(sgd)
    assert out.cls == "other"


def test_anti_momentum_and_pure_history_sign_rules_are_other():
    """Rule: sign(g - 0.5 m) (the history pushes against the gradient) and sign(m_{t-1})
    (the current gradient never decides) are sign-based but not a momentum: other."""
    anti = """def train(w, g, m, lr):
    u = m * -0.5
    u = u + g
    update = sign(u)
    m = interp(g, m, 0.9)
    update = update * 0.001
    return update, m
"""
    delayed = """def train(w, g, m, lr):
    update = sign(m)
    m = interp(g, m, 0.9)
    update = update * 0.001
    return update, m
"""
    assert classify(anti).cls == "other"
    assert classify(delayed).cls == "other"


# ---------------------------------------------------------------- plumbing
def test_invalid_text_is_other_and_never_raises():
    """Rule: a program that does not parse or check is 'other' (source invalid), no error."""
    out = classify("def train(w, g, lr):\n    update = foo(g)\n    return update\n")
    assert out.cls == "other" and out.source == "invalid"


def test_results_are_cached_by_structural_hash():
    """Rule: programs with the same structural hash (renamed variables, dead code) share one
    classification -- the benchmark classifies thousands of candidates."""
    renamed = LION.replace("update", "step").replace("wd", "decay") \
        .replace("return step, m", "junk = g * 2.0\n    return step, m")
    first = classify(LION)
    assert classify(parse(renamed)) is first


def test_sign_prefilter_agrees_with_the_classes():
    """Rule: the cheap pre-filter is True for every sign class and False for Adam and SGD-M,
    so a scan that skips non-sign programs misses no sign program."""
    for text in (LION, SIGNUM, SIGN_G, FOUND_SIGN, reference_text("program4")):
        assert sign_based(text)
    for ref in ("adamw", "sgdm", "adam"):
        assert not sign_based(load_reference(ref))


def test_sign_momentum_class_boundaries():
    """Rule: beta1 < beta2 is lion, beta1 > beta2 lion_b1_ge_b2, equal memories signum,
    betas outside (0, 1) other."""
    assert sign_momentum_class(0.9, 0.99) == "lion"
    assert sign_momentum_class(0.99, 0.9) == "lion_b1_ge_b2"
    assert sign_momentum_class(0.9, 0.9) == "signum"
    assert sign_momentum_class(0.9, 0.9001) == "signum"  # memories 0.1% apart: < MEMORY_TOL
    assert sign_momentum_class(0.9, 0.9001, tol=1e-9) == "lion"  # recognised: exact
    assert sign_momentum_class(1.0, 0.9) == "other"
    assert set(SIGN_ANY) <= set(CLASSES)

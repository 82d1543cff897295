"""Recognition: is a (simplified) program a known optimizer, and with which hyperparameters?

Templates are the shipped reference programs (primitives/programs/*.py), plus the stateless
SGD and signSGD written out below, with their constants as parameters. Fitting has two parts:
  1. shape parameters (betas) from sympy: each live slot's new value is S = X + b * s with a
     constant decay b; Lion's beta1 is read off the argument of its sign.
  2. scale parameters from the interpreter: with the shape fixed, the template instance with
     lr 1 and no weight decay gives a direction d_k; the candidate's updates u_k satisfy
     u_k = lr * d_k + lr * weight_decay * lr_k * w_k, a linear least-squares fit.
The fitted instance is then verified numerically: the same updates as the candidate on random
inputs for several steps. The verification decides; the fits only propose.

A schedule transform is not a new optimizer: when the update is h(lr) * U with U free of lr
and h(lr) not lr itself (0.0115 * sqrt(lr) * sign(g)), U * lr is recognised and the result
carries `schedule = "sqrt(lr)"` ("signSGD with a sqrt(lr) schedule").

Lion with beta1 = 1 is not Lion: its update is the sign of the momentum *before* this step's
gradient enters it, i.e. Signum with the update taken from the previous momentum. It is named
"LaggedSignum" (one word: the name becomes the exported class's name).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy
import torch

from optsearch.primitives.interpreter import execute
from optsearch.primitives.parser import parse
from optsearch.primitives.program import Program, Statement
from optsearch.primitives.reference import load_reference
from optsearch.primitives.symbolic import SymbolicError, from_sympy, normalise_signs, to_sympy

VERIFY_SHAPE, VERIFY_STEPS = (8, 16), 8
MAX_TEMPLATE_SLOTS = 3
SIGNUM_TOL = 1e-9  # Lion with |beta1 - beta2| below this is Signum, with |beta1 - 1| LaggedSignum
WD_ZERO_TOL = 1e-6  # a fitted weight decay this small is tried as exactly 0 (fit noise)

# Stateless templates (no shipped file): plain SGD (its weight decay, coupled or decoupled,
# is the same thing without momentum) and signSGD (Signum with beta = 0).
SGD_TEXT = """def train(w, g, lr):
    wd = w * 0.0005
    update = g + wd
    lr = lr * 0.01
    update = update * lr
    return update
"""
SIGNSGD_TEXT = """def train(w, g, lr):
    update = sign(g)
    wd = w * 0.1
    update = update + wd
    lr = lr * 0.0001
    update = update * lr
    return update
"""


LAGGED_SIGNUM_TEXT = """def train(w, g, m, lr):
    update = sign(m)
    m = interp(g, m, 0.9)
    wd = w * 0.1
    update = update + wd
    lr = lr * 0.0001
    update = update * lr
    return update, m
"""


@functools.cache
def template_program(reference: str) -> Program:
    """A template's program: a shipped reference name, or program text."""
    return parse(reference) if reference.lstrip().startswith("def ") else \
        load_reference(reference)


@dataclass(frozen=True)
class Recognition:
    name: str
    hyperparameters: dict
    program: Program
    bindings: dict = field(default_factory=dict)  # (statement index, arg position) -> name
    schedule: str = ""  # "" or the transform h(lr) standing where the template has lr

    @property
    def label(self) -> str:
        """The name as a reader wants it: "signSGD with a sqrt(lr) schedule"."""
        return f"{self.name} with a {self.schedule} schedule" if self.schedule else self.name


@dataclass(frozen=True)
class Template:
    name: str
    reference: str
    defaults: dict  # hyperparameter -> its value in the reference file (locates the bindings)
    shape: Callable  # (Form, slot order) -> dict of shape hyperparameters, or None

    def bindings(self) -> dict:
        program = template_program(self.reference)
        by_value = {v: k for k, v in self.defaults.items()}
        return {(i, pos): by_value[a] for i, s in enumerate(program.statements)
                for pos, a in enumerate(s.args) if not isinstance(a, str) and a in by_value}

    def instance(self, values: dict) -> Program:
        program = template_program(self.reference)
        stmts = list(program.statements)
        for (i, pos), name in self.bindings().items():
            s = stmts[i]
            args = s.args[:pos] + (float(values[name]),) + s.args[pos + 1:]
            stmts[i] = Statement(s.target, s.op, args, s.line)
        return program.replace_statements(stmts)


@dataclass(frozen=True)
class Form:
    """The candidate in sympy: slot decays and the sign argument (for sign methods)."""
    sym: object
    slots: tuple  # live slot indices
    decay: dict  # live slot -> b, where S = X + b * s and X does not read s
    scale: dict  # live slot -> a, where X = a * g (None if X is not a multiple of g)


def analyse(program: Program) -> Form | None:
    try:
        sym = to_sympy(program)
    except (SymbolicError, TypeError, ValueError):
        return None
    if len(sym.states) > MAX_TEMPLATE_SLOTS:
        return None  # every template keeps 0 to 3 slots
    names = program.slots
    decay, scale = {}, {}
    g = sym.symbols[program.grad]
    for s, expr in sym.states.items():
        x = sym.symbols[names[s]]
        b = sympy.diff(expr, x)
        if not b.is_number:
            return None
        rest = expr - b * x  # sympy cancels the b * x term of an EMA as it builds this
        if x in rest.free_symbols:
            return None
        decay[s] = float(b)
        ratio = rest / g  # no simplify(): it can take seconds on random programs
        scale[s] = float(ratio) if ratio.is_number and ratio != 0 else None
    return Form(sym, tuple(sorted(sym.states)), decay, scale)


# ---------------------------------------------------------------- shape fits per template
def _lion_shape(form: Form, order) -> dict | None:
    (s,) = order
    b, a = form.decay[s], form.scale[s]
    signs = normalise_signs(form.sym.update).atoms(sympy.sign)
    if a is None or b == 1 or len(signs) != 1:
        return None
    (arg,) = [e.args[0] for e in signs]
    g = form.sym.symbols[form.sym.params[1]]
    m = form.sym.symbols[form.sym.params[2 + s]]
    c_g, c_m = sympy.diff(arg, g), sympy.diff(arg, m)
    if not (c_g.is_number and c_m.is_number):
        return None
    # The slot holds k times an EMA with decay b (k = a / (1 - b)); sign is scale-invariant.
    c_m = float(c_m) * a / (1 - b)
    total = float(c_g) + c_m
    return None if total == 0 else {"beta1": c_m / total, "beta2": b}


def _decays(*names):
    def shape(form: Form, order) -> dict:
        return {n: form.decay[s] for n, s in zip(names, order) if n}
    return shape


TEMPLATES = (
    Template("Lion", "lion", {"beta1": 0.9, "beta2": 0.99, "weight_decay": 0.1, "lr": 1e-4},
             _lion_shape),
    Template("SGD-M", "sgdm", {"momentum": 0.9, "lr": 0.01}, _decays("momentum")),
    Template("AdamW", "adamw", {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01,
                                "lr": 0.001}, _decays("beta1", "beta2")),
    Template("Adam", "adam", {"beta1": 0.9, "beta2": 0.999, "lr": 0.001},
             _decays("beta1", "beta2", None)),
    Template("RMSProp", "rmsprop", {"alpha": 0.99, "lr": 0.01}, _decays("alpha")),
    Template("AdaGrad", "adagrad", {"lr": 0.01}, _decays(None)),
    Template("AdaBelief", "adabelief", {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01,
                                        "lr": 0.001}, _decays("beta1", "beta2")),
)
STATELESS = (
    Template("SGD", SGD_TEXT, {"weight_decay": 0.0005, "lr": 0.01}, _decays()),
    Template("signSGD", SIGNSGD_TEXT, {"weight_decay": 0.1, "lr": 1e-4}, _decays()),
)
SIGNUM = Template("Signum", "signum", {"beta": 0.9, "weight_decay": 0.1, "lr": 1e-4},
                  _decays("beta"))
LAGGED_SIGNUM = Template("LaggedSignum", LAGGED_SIGNUM_TEXT,
                         {"beta": 0.9, "weight_decay": 0.1, "lr": 1e-4}, _decays("beta"))


# ---------------------------------------------------------------- driver
def recognize(program: Program) -> Recognition:
    """The first template whose fitted instance reproduces the program's updates, else the
    same for the program with its lr schedule transform taken out, else "new"."""
    found = _recognize_plain(program)
    if found is None:
        found = _recognize_scheduled(program)
    return found or Recognition("new", {}, program, {})


def _recognize_plain(program: Program) -> Recognition | None:
    form = analyse(program)
    if form is None:
        return None
    probe = _Probe(program)
    for template in TEMPLATES + STATELESS:
        n_slots = template_program(template.reference).n_slots
        if n_slots != len(form.slots):
            continue
        for order in itertools.permutations(form.slots):
            found = _try(template, form, order, probe)
            if found is not None:
                return found
    return None


def split_schedule(program: Program):
    """(h(lr), the program with lr in place of h(lr)) when the update is h(lr) * U, U free of
    lr, h a function of lr alone other than lr itself and the slots free of lr; else None."""
    try:
        sym = to_sympy(program)
    except (SymbolicError, TypeError, ValueError):
        return None
    lr = sym.symbols[program.lr]
    if any(lr in e.free_symbols for e in sym.states.values()):
        return None
    rest, schedule = sympy.factor_terms(sym.update).as_independent(lr, as_Mul=True)
    if schedule.free_symbols != {lr} or schedule == lr:
        return None
    try:
        plain = from_sympy(program.params, rest * lr, sym.states, program.name)
    except (SymbolicError, TypeError, ValueError):
        return None
    return schedule, plain


def _recognize_scheduled(program: Program) -> Recognition | None:
    split = split_schedule(program)
    if split is None:
        return None
    schedule, plain = split
    found = _recognize_plain(plain)
    if found is None:
        return None
    sym = to_sympy(found.program)
    lr = sym.symbols[found.program.lr]
    update = sym.update.subs(lr, schedule)
    instance = from_sympy(found.program.params, update, sym.states, found.program.name)
    # The scheduled instance is built through sympy: its constants no longer sit where the
    # template's bindings point, so the export names them generically.
    return Recognition(found.name, found.hyperparameters, instance, {},
                       sympy.sstr(schedule))


def _try(template: Template, form: Form, order, probe) -> Recognition | None:
    shape = template.shape(form, order)
    if shape is None:
        return None
    if template.name == "Lion" and abs(shape["beta1"] - 1.0) < SIGNUM_TOL:
        template, shape = LAGGED_SIGNUM, {"beta": shape["beta2"]}
    elif template.name == "Lion" and abs(shape["beta1"] - shape["beta2"]) < SIGNUM_TOL:
        template, shape = SIGNUM, {"beta": shape["beta2"]}
    values = dict(shape, lr=1.0)
    has_wd = "weight_decay" in template.defaults
    if has_wd:
        values["weight_decay"] = 0.0
    scale = probe.fit_scale(template.instance(values), has_wd)
    if scale is None:
        return None
    values.update(scale)
    values = {k: _clean(v) for k, v in values.items()}
    if has_wd and 0 < abs(values["weight_decay"]) < WD_ZERO_TOL:
        no_decay = dict(values, weight_decay=0.0)  # -6e-19 is the fit's noise, not a decay
        if probe.same_updates(template.instance(no_decay)):
            values = no_decay
    instance = template.instance(values)
    if not probe.same_updates(instance):
        return None
    return Recognition(template.name, values, instance, template.bindings())


def _clean(value: float) -> float:
    """The shortest decimal within 1e-7 (relative) of a fitted value: drops the noise of the
    least-squares fit and of the eps guards (0.0001999999987 -> 0.0002)."""
    for digits in range(1, 17):
        rounded = float(f"{value:.{digits}g}")
        if abs(rounded - value) <= 1e-7 * abs(value):
            return rounded
    return value


class _Probe:
    """Open-loop runs on fixed random inputs: both programs see the same w, g, lr sequence."""

    def __init__(self, program: Program, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.inputs = []
        for k in range(VERIFY_STEPS):
            w = torch.randn(VERIFY_SHAPE, generator=gen, dtype=torch.float64)
            # Large gradients keep the eps of the safe division negligible (m / |m| ~ sign m).
            g = torch.randn(VERIFY_SHAPE, generator=gen, dtype=torch.float64) * (100 + 100 * k)
            self.inputs.append((w, g, 0.3 + 0.7 * k / VERIFY_STEPS))
        self.target = self.run(program)

    def run(self, program: Program) -> torch.Tensor:
        state = tuple(torch.zeros(VERIFY_SHAPE, dtype=torch.float64)
                      for _ in range(program.n_slots))
        out = []
        with torch.no_grad():
            for w, g, lr in self.inputs:
                update, state = execute(program, w, g, state, lr)
                out.append(update.expand(VERIFY_SHAPE))
        return torch.stack(out)

    def fit_scale(self, direction_program: Program, has_wd: bool) -> dict | None:
        d = self.run(direction_program).reshape(-1)
        columns = [d]
        if has_wd:
            columns.append(torch.stack([lr * w for w, _, lr in self.inputs]).reshape(-1))
        design = torch.stack(columns, dim=1)
        if not torch.isfinite(design).all() or not torch.isfinite(self.target).all():
            return None
        coef = torch.linalg.lstsq(design, self.target.reshape(-1, 1)).solution.reshape(-1)
        lr = float(coef[0])
        if lr == 0:
            return None
        return {"lr": lr, "weight_decay": float(coef[1]) / lr} if has_wd else {"lr": lr}

    def same_updates(self, program: Program) -> bool:
        got = self.run(program)
        scale = float(self.target.abs().max())
        return bool(torch.allclose(got, self.target, rtol=1e-4, atol=1e-7 * scale + 1e-300))

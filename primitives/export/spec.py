"""What the optimizer class needs: the exported program, its hyperparameters, the names.

With a `Recognition` (duck-typed: `name`, `hyperparameters`, `program`,
`bindings: {(statement index, arg position): name}`) its template program is exported and the
bound constants become named hyperparameters (`lr`, `betas=(beta1, beta2)`, `weight_decay`,
...). When `lr` is bound, the program's lr *input* (the schedule value) is 1 and the group's
`lr` is the real learning rate a scheduler changes. Without a recognition every constant becomes
a numbered hyperparameter `c0, c1, ...` (discovered values as defaults) and the group's `lr` is
the program's lr input: a multiplier, default 1.0, so a scheduler scales the discovered
schedule (`lr = lr * 0.0002` stays inside the program as `lr * c5`).

Everything that reaches the file is validated here: identifiers, pool names, finite floats.
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass

from optsearch.primitives.analysis import check
from optsearch.primitives.liveness import live_indices
from optsearch.primitives.pool import POOL
from optsearch.primitives.program import Program

RESERVED = frozenset({"params", "maximize", "foreach", "state_dtype", "self", "torch"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # the parser's rule: ASCII names only


@dataclass
class Hyper:
    """One scalar hyperparameter: its name in the group and its default (the discovered value)."""
    name: str
    default: float
    rule: str  # "lr" | "unit" (0 <= x < 1) | "nonneg" | "finite"


@dataclass
class Spec:
    program: Program
    live: frozenset[int]
    hypers: list[Hyper]
    const_expr: dict[tuple[int, int], str]  # (statement, arg position) -> code for a constant
    lr_input: str  # code for the program's lr input: "h_lr" (group lr) or "1.0"
    betas: bool  # beta1 and beta2 travel together as `betas`
    recognized: str | None = None


def _rule(name: str, default: float) -> str:
    if name == "lr":
        return "lr"
    rules = {"weight_decay": "nonneg", "eps": "nonneg"}
    rule = "unit" if name.startswith("beta") or name in ("momentum", "alpha", "rho") else \
        rules.get(name, "finite")
    ok = {"unit": 0.0 <= default < 1.0, "nonneg": default >= 0.0}.get(rule, True)
    return rule if ok else "finite"  # never reject the discovered value itself


def _check_name(name: str) -> None:
    if not _is_identifier(name) or name in RESERVED:
        raise ValueError(f"hyperparameter name {name!r} is not usable in the exported class")


def _is_identifier(name) -> bool:
    return isinstance(name, str) and bool(_IDENTIFIER.match(name)) and not keyword.iskeyword(name)


def default_class_name(recognition) -> str:
    """The exported class's name: the recognised optimizer's ("SGD-M" -> "SGDM"), with its
    schedule transform when it has one ("signSGD_sqrt_lr": a user who constructs it must not
    take it for plain signSGD); "DiscoveredOptimizer" for a new rule (recognition None)."""
    if recognition is None:
        return "DiscoveredOptimizer"
    name = re.sub(r"\W", "", str(recognition.name))
    schedule = re.sub(r"\W+", "_", getattr(recognition, "schedule", "") or "").strip("_")
    name = f"{name}_{schedule}" if name and schedule else name
    return name if _is_identifier(name) and not name.startswith("_") else "DiscoveredOptimizer"


def check_class_name(class_name: str) -> None:
    if not (class_name.isidentifier() and not keyword.iskeyword(class_name)
            and not class_name.startswith("_") and class_name not in RESERVED | {"math"}):
        raise ValueError(f"class name {class_name!r} is not a usable Python identifier")


def _finite(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not a finite number")
    return float(value)


def check_model(program: Program) -> None:
    """The checks the parser makes, for a Program built in code (mutations, recognition): the
    file only ever holds validated identifiers, pool names and `repr` of finite floats."""
    if len(program.params) < 3 or len(program.returns) != program.n_slots + 1:
        raise ValueError("a program takes (w, g, *slots, lr) and returns (update, *slots)")
    names = [*program.params, *program.returns, *(s.target for s in program.statements)]
    for stmt in program.statements:
        where = f"line {stmt.line}: " if stmt.line else ""
        if stmt.op not in POOL:
            raise ValueError(f"{where}{stmt.op!r} is not a pool function")
        if len(stmt.args) != POOL[stmt.op].arity:
            raise ValueError(f"{where}{stmt.op} takes {POOL[stmt.op].arity} argument(s)")
        names += [a for a in stmt.args if isinstance(a, str)]
        for a in stmt.args:
            if not isinstance(a, str):
                _finite(a, f"{where}constant")
    bad = next((n for n in names if not _is_identifier(n)), None)
    if bad is not None:
        raise ValueError(f"{bad!r} is not a valid program identifier")
    check(program)


def make_spec(program: Program, recognition=None) -> Spec:
    """Decide which program is exported and what every constant becomes."""
    if recognition is not None and recognition.bindings and recognition.name != "new":
        return _recognized_spec(recognition)
    check_model(program)
    live = live_indices(program)
    const_expr, hypers = {}, [Hyper("lr", 1.0, "lr")]
    for i in sorted(live):
        for pos, arg in enumerate(program.statements[i].args):
            if not isinstance(arg, str):
                name = f"c{len(hypers) - 1}"
                hypers.append(Hyper(name, float(arg), "finite"))
                const_expr[(i, pos)] = f"h_{name}"
    return Spec(program, live, hypers, const_expr, "h_lr", betas=False)


def _recognized_spec(rec) -> Spec:
    program = rec.program
    check_model(program)
    live = live_indices(program)
    const_expr, defaults = {}, {}
    for i in sorted(live):
        for pos, arg in enumerate(program.statements[i].args):
            if isinstance(arg, str):
                continue
            name = rec.bindings.get((i, pos))
            if name is None:
                const_expr[(i, pos)] = repr(float(arg))
                continue
            _check_name(name)
            defaults.setdefault(name, _finite(rec.hyperparameters.get(name, arg),
                                              f"hyperparameter {name}:"))
            const_expr[(i, pos)] = f"h_{name}"
    lr_bound = "lr" in defaults
    if not lr_bound:
        defaults = {"lr": 1.0, **defaults}
    order = sorted(defaults, key=lambda n: (n != "lr", not n.startswith("beta"), n == "weight_decay"))
    hypers = [Hyper(n, defaults[n], _rule(n, defaults[n])) for n in order]
    betas = "beta1" in defaults and "beta2" in defaults
    return Spec(program, live, hypers, const_expr, "1.0" if lr_bound else "h_lr", betas,
                recognized=rec.name)


def signature(spec: Spec) -> list[tuple[str, str, list[str]]]:
    """Constructor arguments as (name, default code, member hyperparameters); `betas` groups
    beta1 and beta2 the way torch.optim does."""
    args, used = [], set()
    for h in spec.hypers:
        if h.name in used:
            continue
        if spec.betas and h.name in ("beta1", "beta2"):
            b = {x.name: x.default for x in spec.hypers}
            args.append(("betas", f"({b['beta1']!r}, {b['beta2']!r})", ["beta1", "beta2"]))
            used |= {"beta1", "beta2"}
        else:
            args.append((h.name, repr(h.default), [h.name]))
            used.add(h.name)
    return args

"""Simplification of a discovered program into a readable, recognisable one.

Pipeline, every change recorded as a `Step` of the derivation trace:
  dead code (cross-iteration liveness, dead state slots leave the signature)
  -> exact algebra: constant folding, sqrt(x*x) -> abs(x), x/abs(x) -> sign(x), positive
     factors out of a sign (sign(m / sqrt(v)) -> sign(m)), interp-chain merging, folding a
     state slot proportional to another, a slot that holds 0 for ever (never written, or
     written with an exact 0 such as arccosh(sin(m))) read as 0, a sympy round trip when
     cheaper (the sign forms the algebra decides, e.g. x * reciprocal(abs(x)) -> sign(x),
     then common subexpressions)
  -> near-identity ablation of gradient preprocessing (clip(g, c), arcsin(g), ...): approximate
  -> a saturated clip read as a scaled sign, clip(x, b) -> |b| sign(x), and a saturated
     function of a huge multiple, arcsin(m / 0) -> (pi/2) sign(m) (the pool divides by eps),
     and a sign's argument to its leading order, sign(m + g + g m) -> sign(m + g)
     (only with `measure`, kept within noise): approximate
  -> ablation with evaluation (only with `measure`): bypass a call f(x, ..) -> x, and delete a
     statement (its readers see the value the name held before it)
  -> constant fitting (only with `fit_evaluations`: search.constants, judged by `measure`)
  -> constant rounding -> recognition against the templates of `search.recognize`.

`measure(program) -> (mean, stderr)` is the fitness over seeds (higher is better). A change
that is not exact is kept when the fitness stays within noise: mean_new >= mean_ref -
NOISE_Z * sqrt(se_ref^2 + se_new^2); ablation and rounding compare with the program they
started from (no drift by a run of small losses), ablation with the current program too (an
earlier ablation's real gain is kept). Without `measure` the non-evaluating steps run only;
the near-identity ablation is then applied unverified and its trace step says so.

An ablation that changes the character of a rule -- removing an interpolation (a beta set to
0 or 1), a sign, or a state slot -- is not the search suite's to judge: the search suite
cannot see Lion's beta1 (fitness 0.6093 -> 0.6042 on `default`, within noise) and would
call the beta1 = 1 rule Lion. Such an ablation is rejected when the search suite resolves a
loss; otherwise `measure_meta` (the meta-validation suite, the search suite at 10x) judges:
a resolved loss rejects it, a resolved gain keeps it, and a difference within noise keeps the
statement with a trace step "not resolved by the suite" (so does the lack of `measure_meta`).
Rejections are trace steps too ("ablation_rejected", naming the suite that resolved them).
A measure may carry a `name` attribute (its suite) for the trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.interpreter import run_steps
from optsearch.primitives.pool import POOL
from optsearch.primitives.printer import format_program, format_statement
from optsearch.primitives.program import Program, Statement
from optsearch.primitives.symbolic import SymbolicError, from_sympy, normalise_signs, to_sympy
from optsearch.search.constants import fit_constants
from optsearch.search.distill import rewrite_rules as rr
from optsearch.search.distill.recognize import Recognition, recognize

NOISE_Z = 2.0
DEFAULT_DIGITS = 3  # significant digits kept by rounding when there is no measure
MAX_SYMPY_STATEMENTS = 40  # larger programs skip the sympy round trip (expression blow-up)

EXACT_RULES = (
    ("constant_folding", rr.constant_folding),
    ("sqrt_square_to_abs", rr.sqrt_square_to_abs),
    ("sign_of_ratio", rr.sign_of_ratio),
    ("sign_positive_factor", rr.sign_positive_factor),
    ("interp_chain", rr.interp_chain),
    ("fold_state_slot", rr.fold_state_slot),
    ("zero_state_slot", rr.zero_state_slot),
    ("gradient_difference_momentum", rr.gradient_difference_momentum),
)


@dataclass(frozen=True)
class Step:
    rule: str
    before: str
    after: str
    fitness_before: float | None = None
    fitness_after: float | None = None
    exact: bool = True
    note: str = ""


@dataclass(frozen=True)
class Simplification:
    program: Program
    trace: list = field(default_factory=list)
    recognition: Recognition | None = None


def simplify(program: Program, measure=None, measure_meta=None,
             fit_evaluations: int = 0) -> Simplification:
    """`fit_evaluations` > 0 (with a measure): after the ablations, fit the constants with
    that many measure calls at most. Only for a cheap, deterministic measure (an imitation
    fitness): a proxy-suite measure costs seconds per call."""
    driver = _Driver(program, measure, measure_meta)
    driver.apply("dead_code", rr.dead_code, cleanup=False)
    driver.program = rr.to_ssa(driver.program)  # renaming only: not a step of its own
    driver.exhaust()
    driver.sympy_round_trip()
    while driver.apply("near_identity", rr.near_identity, exact=False, note=_NEAR_NOTE):
        driver.exhaust()
        driver.sympy_round_trip()
    if measure is not None:
        for name, rule, note in APPROXIMATE_READINGS:
            while driver.apply(name, rule, exact=False, note=note):
                driver.exhaust()
                driver.sympy_round_trip()
        driver.ablate()
        if fit_evaluations:
            driver.fit_constants(fit_evaluations)
        driver.exhaust()  # an ablation can expose an exact form (a slot now keeping g)
        driver.sympy_round_trip()
    driver.round_constants()
    final = rr.from_ssa(driver.program)
    return Simplification(final, driver.trace, recognize(final))


_CLIP_NOTE = "approximate: clip(x, b) = |b| sign(x) where |x| >= |b| (a saturated clip)"
_GAIN_NOTE = ("approximate: f(k x) = f(+-inf) by sign(x) where |k x| >= 1 (arcsin, arccos, "
              f"arctanh; arctan, tanh within 1/|k x|), |k| >= {rr.SATURATION_GAIN:g} or "
              "x / 0 = x / eps (a saturated function)")
_ORDER_NOTE = ("approximate: sign(a + b) = sign(a) for b of degree >= 2 in the signals, a of "
               "degree <= 1, where the signals are small")
APPROXIMATE_READINGS = (("saturated_clip", rr.saturated_clip, _CLIP_NOTE),
                        ("saturated_gain", rr.saturated_gain, _GAIN_NOTE),
                        ("higher_order_terms", rr.higher_order_terms, _ORDER_NOTE))
_NEAR_NOTE = ("approximate: f(g) = g + O(g^3) (clip: exact while |g| <= |c|); holds for small "
              "gradients")


class _Driver:
    def __init__(self, program: Program, measure, measure_meta=None):
        self.program = program
        self.measure = measure
        self.measure_meta = measure_meta
        self.trace: list[Step] = []
        self.cache: dict = {}
        self.meta_cache: dict = {}
        self.failed: set = set()  # (rule, program text) already rejected

    # -- fitness
    def fitness(self, program: Program):
        if self.measure is None:
            return None
        key = structural_hash(program)
        if key not in self.cache:
            self.cache[key] = tuple(self.measure(rr.from_ssa(program)))
        return self.cache[key]

    def fitness_meta(self, program: Program):
        key = structural_hash(program)
        if key not in self.meta_cache:
            self.meta_cache[key] = tuple(self.measure_meta(rr.from_ssa(program)))
        return self.meta_cache[key]

    def within_noise(self, ref, new) -> bool:
        noise = NOISE_Z * math.hypot(ref[1], new[1])
        return bool(np.isfinite(ref[0]) and np.isfinite(new[0])) and new[0] >= ref[0] - noise

    # -- recording
    def record(self, rule, before, after, exact=True, note="", fit=(None, None)):
        text_before, text_after = _text(before), _text(after)
        note = " | ".join(x for x in (note, _changes(text_before, text_after)) if x)
        self.trace.append(Step(rule, text_before, text_after,
                               _mean(fit[0]), _mean(fit[1]), exact, note))
        self.program = after

    def apply(self, name, rule, exact=True, note="", cleanup=True) -> bool:
        """Apply `rule` once; keep the result if valid (and equivalent, or within noise)."""
        before = self.program
        key = (name, _text(before))
        if key in self.failed:
            return False
        after = rule(before)
        if after is not None and cleanup:
            after = rr.dead_code(after) or after
        if after is None or not rr.valid(after) or (exact and not equivalent(before, after)):
            self.failed.add(key)
            return False
        fit = (self.fitness(before), self.fitness(after)) if not exact else (None, None)
        if fit[0] is not None and not self.within_noise(fit[0], fit[1]):
            self.failed.add(key)
            return False
        self.record(name, before, after, exact, note, fit)
        return True

    def exhaust(self) -> None:
        """Apply the exact rules until none changes the program."""
        progress = True
        while progress:
            progress = any(self.apply(name, rule) for name, rule in EXACT_RULES)

    def sympy_round_trip(self) -> None:
        """Normal form through sympy (constant folding, cancellation); kept only if cheaper."""
        if len(self.program.statements) > MAX_SYMPY_STATEMENTS:
            return
        try:
            sym = to_sympy(self.program)
            update = normalise_signs(sym.update)
            states = {s: normalise_signs(e) for s, e in sym.states.items()}
            after = from_sympy(self.program.params, update, states, self.program.name)
        except (SymbolicError, TypeError, ValueError):
            return
        after = rr.to_ssa(after)
        after = rr.dead_code(after) or after  # a slot only a sign's positive factor read
        if cost(after) < cost(self.program) and rr.valid(after) and \
                equivalent(self.program, after):
            self.record("sympy_normal_form", self.program, after,
                        note="round trip through sympy with common-subexpression elimination")

    # -- ablation with evaluation
    def ablate(self) -> None:
        ref = self.fitness(self.program)
        tried = set()
        changed = True
        while changed:
            changed = False
            for i, stmt in enumerate(self.program.statements):
                for arg, what in self._ablations(i, stmt):
                    key = (format_statement(stmt), arg)
                    if key in tried:
                        continue
                    tried.add(key)
                    if self._try_bypass(i, stmt, arg, ref, what):
                        changed = True
                        break
                if changed:
                    break

    def _ablations(self, i, stmt):
        """(replacement, kind) pairs: bypass the call f(x, ..) -> x for each variable
        argument, and delete the statement: its readers see what the name held before.

        Arithmetic with a constant (lr * 0.0002, w * 0.46, s + 1e-8) is left alone: bypassing
        it sets a hyperparameter to 1 or 0, which tunes rather than simplifies (on a suite
        that prefers another lr it always "wins"); removing the term it feeds (update + wd ->
        update) is still tried, and the constant's digits are for rounding."""
        if POOL[stmt.op].infix and stmt.constants():
            return []
        out = [(arg, "bypass") for arg in dict.fromkeys(stmt.variables())]
        previous = rr.previous_holder(self.program, i)
        if previous is not None and previous not in stmt.variables():
            out.append((previous, "delete"))
        return out

    def _try_bypass(self, i, stmt, arg, ref, what="bypass") -> bool:
        after = rr.bypass(self.program, i, arg)
        if after is None:
            return False
        after = rr.dead_code(after) or after
        if not rr.valid(after):
            return False
        new, current = self.fitness(after), self.fitness(self.program)
        text = format_statement(stmt)
        note = f"bypass {text} -> {arg}" if what == "bypass" else f"delete {text}"
        if changes_character(self.program, after, stmt):
            return self._judge_character(after, note, current, new)
        # Within noise of where ablation started (no drift by small losses in a row) and of
        # the current program (an earlier ablation's real gain is not given back).
        if not (self.within_noise(ref, new) and self.within_noise(current, new)):
            return False
        self.record("ablation", self.program, after, exact=False, note=note,
                    fit=(current, new))
        return True

    def _judge_character(self, after, note, current, new) -> bool:
        """A character change: a loss the search suite resolves rejects it; then the
        meta-validation suite decides, and where it cannot tell the statement stays. Every
        decision is a trace step naming the suite that made it (or could not)."""
        search = getattr(self.measure, "name", "search suite")
        said = f"{search} {_fit_text(current)} -> {_fit_text(new)}"
        if not self.within_noise(current, new):
            self._kept("ablation_rejected", f"resolved by {search}: {note} kept", said,
                       (current, new))
            return False
        if self.measure_meta is None:
            self._kept("ablation_kept", f"not resolved by the suite: {note} kept",
                       f"{said}; no meta-validation measure", (current, new))
            return False
        meta = getattr(self.measure_meta, "name", "meta-validation suite")
        ref_meta, new_meta = self.fitness_meta(self.program), self.fitness_meta(after)
        said += f"; {meta} {_fit_text(ref_meta)} -> {_fit_text(new_meta)}"
        if not self.within_noise(ref_meta, new_meta):
            self._kept("ablation_rejected", f"resolved by {meta}: {note} kept", said,
                       (ref_meta, new_meta))
            return False
        if self.within_noise(new_meta, ref_meta):  # neither better nor worse beyond noise
            self._kept("ablation_kept", f"not resolved by the suite: {note} kept", said,
                       (ref_meta, new_meta))
            return False
        self.record("ablation", self.program, after, exact=False,
                    note=f"{note} (judged on {meta}: {said})", fit=(ref_meta, new_meta))
        return True

    def _kept(self, rule, what, said, fit) -> None:
        """A trace step that changes nothing: a character change the suites judged."""
        self.trace.append(Step(rule, _text(self.program), _text(self.program),
                               _mean(fit[0]), _mean(fit[1]), False, f"{what} ({said})"))

    # -- constants
    def fit_constants(self, evaluations: int) -> None:
        """Nelder-Mead on the live constants (search.constants); kept only if it improves."""
        fit = fit_constants(rr.from_ssa(self.program),
                            lambda p: self.measure(p)[0], evaluations)
        if fit.improved:
            after = rr.to_ssa(fit.program)
            self.record("fit_constants", self.program, after, exact=False,
                        note=f"{fit.constants} constants fitted in {fit.evaluations} evaluations",
                        fit=(self.fitness(self.program), self.fitness(after)))

    def round_constants(self) -> None:
        before = self.program
        stmts = list(before.statements)
        for i, stmt in enumerate(stmts):
            for pos, value in enumerate(stmt.args):
                if not isinstance(value, str):
                    stmts[i] = self._round_one(stmts, i, pos, value)
        after = before.replace_statements(stmts)
        if after == before:
            return
        if self.measure is None:
            note = f"rounded to {DEFAULT_DIGITS} significant digits (no measure)"
            self.record("round_constants", before, after, exact=False, note=note)
        else:
            note = "fewest significant digits keeping fitness within noise"
            fit = (self.fitness(before), self.fitness(after))
            self.record("round_constants", before, after, exact=False, note=note, fit=fit)

    def _round_one(self, stmts, i, pos, value) -> Statement:
        stmt = stmts[i]
        digits = range(1, 7) if self.measure is not None else [DEFAULT_DIGITS]
        ref = self.fitness(self.program) if self.measure is not None else None
        for d in digits:
            rounded = round_sig(value, d)
            if rounded == value:
                return stmt
            args = stmt.args[:pos] + (rounded,) + stmt.args[pos + 1:]
            candidate = Statement(stmt.target, stmt.op, args, stmt.line)
            trial = self.program.replace_statements(stmts[:i] + [candidate] + stmts[i + 1:])
            if ref is None or (rr.valid(trial) and self.within_noise(ref, self.fitness(trial))):
                return candidate
        return stmt


def round_sig(value: float, digits: int) -> float:
    """Round to `digits` significant digits -- of 1 - value when value is nearer to 1.

    EMA coefficients live near 1 and what matters is their distance to 1 (the memory
    1/(1-beta)): rounding 0.9997 to 3 digits must give 0.9997, not 1.0 (a frozen EMA)."""
    gap = 1.0 - value
    if gap != 0.0 and abs(gap) < abs(value):
        rounded_gap = float(f"{gap:.{digits}g}")
        decimals = digits - 1 - math.floor(math.log10(abs(rounded_gap)))
        return round(1.0 - rounded_gap, max(decimals, 0))
    return float(f"{value:.{digits}g}")


def changes_character(before: Program, after: Program, stmt: Statement) -> bool:
    """Removing an interpolation of two signals (a beta to 0 or 1), a sign, or a state slot
    changes which rule the program is, not how well tuned it is. An interp with a constant
    end, interp(x, c, t) = (1 - t) x + t c, is an affine map of one signal, not a blend."""
    blend = stmt.op == "interp" and all(isinstance(a, str) for a in stmt.args[:2])
    return blend or stmt.op in CHARACTER_OPS or after.n_slots < before.n_slots


CHARACTER_OPS = ("sign",)  # and interp of two signals (changes_character)


def _fit_text(fit) -> str:
    return f"{fit[0]:.4g} ± {fit[1]:.2g}"


def cost(program: Program) -> float:
    return sum(POOL[s.op].cost for s in program.statements)


def equivalent(a: Program, b: Program, steps: int = 6, seed: int = 0) -> bool:
    """Same updates for a few steps on random inputs, in float64.

    The algebra drops the eps of the safe division, so x / abs(x) and sign(x) differ by
    ~1e-8 / |x| element-wise: demand agreement to 1e-5 (relative to the largest update) on 95%
    of the elements and to 1e-2 everywhere -- a wrong rewrite misses both by far."""
    gen = torch.Generator().manual_seed(seed)
    shape = (4, 8)
    w = torch.randn(shape, generator=gen, dtype=torch.float64)
    grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(steps)]
    lrs = [0.2 + 0.8 * k / steps for k in range(steps)]
    with torch.no_grad():
        ua, ub = torch.stack(run_steps(a, w, grads, lrs)), torch.stack(run_steps(b, w, grads, lrs))
    if not (torch.isfinite(ua).all() and torch.isfinite(ub).all()):
        return bool(torch.equal(torch.nan_to_num(ua), torch.nan_to_num(ub)))
    scale = float(ua.abs().max()) + 1e-300
    err = (ua - ub).abs() / scale
    return float((err <= 1e-5).double().mean()) >= 0.95 and float(err.max()) <= 1e-2


def _text(program: Program) -> str:
    return format_program(rr.from_ssa(program))


def _changes(before: str, after: str) -> str:
    """The statements a step added and removed, as a one-line note."""
    old, new = before.splitlines(), after.splitlines()
    added = [line.strip() for line in new if line not in old]
    removed = [line.strip() for line in old if line not in new]
    parts = ([f"-{x}" for x in removed] + [f"+{x}" for x in added])
    return "; ".join(parts)


def _mean(fit):
    return None if fit is None else float(fit[0])

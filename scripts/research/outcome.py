"""Outcome classes of a program's live behaviour (does the search rediscover Lion?).

    from scripts.research.outcome import classify, CLASSES, SIGN_MOMENTUM, SIGN_ANY
    out = classify(program_or_text)
    out.cls     # "lion" | "lion_b1_ge_b2" | "signum" | "sign_descent" | "adam_like" | "other"
    out.name, out.hyperparameters, out.source, out.note

Classes:
  lion           sign of an interpolation (beta1) of g and a momentum whose own EMA rate beta2
                 differs, with 0 < beta1 < beta2 < 1 (Lion's form; the paper's 0.9 < 0.99)
  lion_b1_ge_b2  the same form with beta1 > beta2 (the interpolation remembers longer than
                 the momentum); beta1 = beta2 is signum
  signum         sign of one EMA of g (beta1 = beta2: one beta)
  sign_descent   sign of the current gradient: the update does not depend on earlier gradients
  adam_like      AdamW, Adam, RMSProp, AdaGrad, AdaBelief (recognised), or a program that
                 behaves like one: not sign-based, invariant to the gradient's scale,
                 element-wise, with a history
  other          everything else (SGD, SGD-M, programs that fail to compile or run, ...)

Method. First `search.simplify.simplify(program, measure=None)` (no training) and its
recogniser: a recognised Lion / Signum / AdamW / ... decides the class, with the recognised
constants (`source == "recognised"`). The recogniser needs the update to be lr-schedule
times a template, so it misses e.g. a sign rule that ignores the schedule; an unrecognised
program goes to a behavioural probe (`source == "probe"`): the compiled rule
(`compile_program(p, batch_dims=1)`, what the tasks run) on fixed seeded float64 tensors,
open loop (w held fixed, w = 0 so that a decoupled weight decay drops out):
  * sign-based: at every step |update| is the same for >= 98% of the elements (within 1e-3
    of their median), and both signs occur;
  * momentum (history): with the sign argument sum_k c_k g_{t-k}, one batched run holds every
    lag k = 1..LAGS: element j sees g_t = rho_j s_j, g_{t-k} = -s_j (rho_j log-spaced over
    1e-6..1e6, refined by a second pass; a second half with +s_j catches c_k < 0), and no
    other gradient; the sign flips at rho = r_k = c_k / c_0. Gradients stay below
    PROBE_AMPLITUDE, where clip(g, lr) and arcsin(g) are near the identity. r_k = 0 for all
    k (no flip down to rho = 1e-6) is sign descent; a sign the current gradient does not
    decide (c_0 = 0, e.g. sign of last step's momentum) or r_1 <= 0 (the history pushes
    against the gradient) is other;
  * effective betas: for Lion r_k = beta1 (1 - beta2) / (1 - beta1) * beta2^(k-1) (Signum is
    beta1 = beta2), so a log-linear fit of r_k over k gives beta2 (the ratio) and beta1 (from
    r_1). beta1 and beta2 within MEMORY_TOL of each other in memory length 1 / (1 - beta)
    count as one beta (Signum); r_k is resolved to ~1e-4 (relative);
  * weight decay: a second run with random w; (update(w) - update(0)) regressed on w gives
    the decoupled decay in units of the sign step;
  * adam_like (when not sign-based): the update is unchanged when every gradient is scaled by
    10, an element's update does not change when other elements' gradients do, and the update
    depends on the previous gradient.
Cost: ~5-50 ms per program (simplify dominates); results are cached by structural hash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from optsearch.primitives.analysis import check
from optsearch.primitives.codegen import compile_program
from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.primitives.program import Program, ProgramError

CLASSES = ("lion", "lion_b1_ge_b2", "signum", "sign_descent", "adam_like", "other")
SIGN_MOMENTUM = frozenset({"lion", "lion_b1_ge_b2", "signum"})
SIGN_ANY = SIGN_MOMENTUM | {"sign_descent"}
ADAM_NAMES = frozenset({"AdamW", "Adam", "RMSProp", "AdaGrad", "AdaBelief"})

PROBE_N, PROBE_STEPS = 512, 8          # random probe: elements, steps
LAGS, THRESH_N = 8, 1024               # threshold probe: lags, elements per sign half
FINE_SPAN = math.log10(1.03)           # the refining pass covers the coarse threshold +-3%
A_RANGE = (-6.0, 6.0)                  # log10 range of the ratios rho_j
PROBE_AMPLITUDE = 1e-3                 # largest gradient entry of the threshold probe
SIGN_FRACTION, SIGN_RTOL = 0.98, 1e-3  # "constant magnitude" test
MEMORY_TOL = 0.05                      # |log((1-b1)/(1-b2))| below this: one beta (probe)
RECOGNISED_TOL = 1e-9                  # the recogniser's own Signum tolerance
INVARIANCE_RTOL = 1e-4                 # scale invariance / element-wise / history tests


@dataclass(frozen=True)
class Outcome:
    cls: str                      # one of CLASSES
    name: str                     # recognised name ("Lion", "AdamW", ...) or "new"
    hyperparameters: dict = field(default_factory=dict)
    source: str = "probe"         # "recognised" | "probe" | "invalid"
    note: str = ""
    simplified: str = ""          # the simplified program text (empty if simplify failed)

    def describe(self) -> str:
        """One line: class, name and constants."""
        hp = ", ".join(f"{k}={_fmt(v)}" for k, v in self.hyperparameters.items())
        return f"{self.cls} ({self.name}{'; ' + hp if hp else ''})"

    def to_dict(self) -> dict:
        return {"class": self.cls, "name": self.name, "hyperparameters": self.hyperparameters,
                "source": self.source, "note": self.note, "simplified": self.simplified}


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


_CACHE: dict[str, Outcome] = {}


def classify(program: Program | str, use_cache: bool = True) -> Outcome:
    """The outcome class of a program (or its text); cached by structural hash."""
    try:
        if not isinstance(program, Program):
            program = parse(program)
        check(program)
    except ProgramError as exc:
        return Outcome("other", "new", {}, "invalid", f"invalid program: {exc.message}")
    key = structural_hash(program)
    if use_cache and key in _CACHE:
        return _CACHE[key]
    out = _classify(program)
    if use_cache:
        _CACHE[key] = out
    return out


def clear_cache() -> None:
    _CACHE.clear()
    _SIGN_CACHE.clear()


_SIGN_CACHE: dict[str, bool] = {}


def sign_based(program: Program | str) -> bool:
    """Cheap pre-filter (probe only, ~1 ms, cached): is the update sign-based at all?

    A program the recogniser would call Lion or Signum is sign-based in its raw form too (its
    simplification only drops dead code, exact algebra and near-identity preprocessing of g),
    so scanning for the first sign program can skip `classify` where this is False."""
    try:
        if not isinstance(program, Program):
            program = parse(program)
        check(program)
    except ProgramError:
        return False
    key = structural_hash(program)
    if key not in _SIGN_CACHE:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            rule = compile_program(program, batch_dims=1)
            gs, _, _, lrs = _random_inputs()
            zero = torch.zeros_like(gs[0])
            d = _run(rule, program.n_slots, [zero] * PROBE_STEPS, gs, lrs)
            _SIGN_CACHE[key] = bool(torch.isfinite(d).all()) and _sign_based(d)
        except Exception:  # noqa: BLE001 -- a program that cannot run is not sign-based
            _SIGN_CACHE[key] = False
        finally:
            torch.set_num_threads(threads)
    return _SIGN_CACHE[key]


def _classify(program: Program) -> Outcome:
    from optsearch.search.distill.simplify import simplify  # sympy import cost only when used

    simplified, note = "", ""
    try:
        result = simplify(program, measure=None)
        simplified = format_program(result.program)
        rec = result.recognition
    except Exception as exc:  # noqa: BLE001 -- the probe still classifies the program
        rec, note = None, f"simplify failed ({type(exc).__name__}); "
    if rec is not None and rec.name != "new":
        hp = dict(rec.hyperparameters)
        if rec.name in ("Lion", "Signum", "LaggedSignum"):  # one memory: sign momentum
            b1 = hp.get("beta1", hp.get("beta"))
            b2 = hp.get("beta2", hp.get("beta"))
            cls = sign_momentum_class(b1, b2, RECOGNISED_TOL)
        elif rec.name == "signSGD":
            cls = "sign_descent"
        else:
            cls = "adam_like" if rec.name in ADAM_NAMES else "other"
        return Outcome(cls, rec.name, hp, "recognised", note.strip("; "), simplified)
    out = probe(program)
    return Outcome(out.cls, "new", out.hyperparameters, "probe", note + out.note, simplified)


def sign_momentum_class(beta1: float, beta2: float, tol: float = MEMORY_TOL) -> str:
    """lion / lion_b1_ge_b2 / signum from the two betas; 'other' outside 0 < beta < 1.

    One beta (signum) when the memories 1 / (1 - beta) agree within `tol` (log ratio)."""
    if not (0.0 < beta1 < 1.0 and 0.0 <= beta2 < 1.0):
        return "other"
    if abs(math.log((1.0 - beta1) / (1.0 - beta2))) <= tol:
        return "signum"
    return "lion" if beta1 < beta2 else "lion_b1_ge_b2"


# ---------------------------------------------------------------- behavioural probe
@dataclass(frozen=True)
class ProbeResult:
    cls: str
    hyperparameters: dict
    note: str = ""


def _run(rule, n_slots: int, ws, gs, lrs) -> torch.Tensor:
    """Open-loop updates [T, K, N]: the rule on the given (w, g, lr) sequence, state from 0."""
    state = tuple(torch.zeros_like(gs[0]) for _ in range(n_slots))
    out = []
    with torch.no_grad():
        for w, g, lr in zip(ws, gs, lrs):
            update, state = rule(w, g, state, torch.tensor(float(lr), dtype=torch.float64))
            out.append(update.expand_as(g))
    return torch.stack(out)


def _random_inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    gs = [torch.randn((1, PROBE_N), generator=gen, dtype=torch.float64)
          for _ in range(PROBE_STEPS)]
    w = torch.randn((1, PROBE_N), generator=gen, dtype=torch.float64)
    other = [torch.randn((1, PROBE_N), generator=gen, dtype=torch.float64)
             for _ in range(PROBE_STEPS)]
    lrs = [0.3 + 0.7 * k / PROBE_STEPS for k in range(PROBE_STEPS)]
    return gs, w, other, lrs


def _sign_based(d: torch.Tensor) -> bool:
    """Every step's |update| is one value on >= SIGN_FRACTION of the elements, with both
    signs; steps with a zero update (sign(m) of a zero momentum) are skipped, but at most
    half of them."""
    zero = 0
    for step in d:
        mag = step.abs().reshape(-1)
        med = float(mag.median())
        if med == 0.0 and float(mag.max()) == 0.0:
            zero += 1
            continue
        if not (med > 0 and math.isfinite(med)):
            return False
        if float(((mag - med).abs() <= SIGN_RTOL * med).double().mean()) < SIGN_FRACTION:
            return False
        pos = float((step > 0).double().mean())
        if not 0.05 < pos < 0.95:
            return False
    return 2 * zero <= len(d)


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = INVARIANCE_RTOL) -> bool:
    scale = float(a.abs().max()) + 1e-300
    return bool(torch.isfinite(b).all()) and float((a - b).abs().max()) <= rtol * scale


def history_ratios(rule, n_slots: int) -> list[float]:
    """r_k = c_k / c_0 for k = 1..LAGS from sign flip thresholds (0: no flip; inf: c_0 = 0).

    Row k-1 of one batched run holds lag k: element j sees g_t = rho_j * s_j now and
    g_{t-k} = -s_j (first half) or +s_j (second half), zero gradients otherwise, with
    s_j = PROBE_AMPLITUDE * min(1, 1 / rho_j) so that no gradient exceeds PROBE_AMPLITUDE
    (a clip(g, lr) or arcsin(g) stays near the identity). The sign of c_0 rho - c_k flips at
    rho = r_k. A coarse pass over rho in 1e-6..1e6 is refined by a second pass over +-3%
    around each threshold found."""
    coarse = torch.logspace(A_RANGE[0], A_RANGE[1], THRESH_N, dtype=torch.float64)
    ratios = _thresholds(rule, n_slots, coarse.expand(LAGS, THRESH_N))
    fine = torch.logspace(-FINE_SPAN, FINE_SPAN, THRESH_N, dtype=torch.float64)
    centres = torch.tensor([abs(r) if math.isfinite(r) and r != 0 else 1.0 for r in ratios],
                           dtype=torch.float64)
    refined = _thresholds(rule, n_slots, centres[:, None] * fine[None, :])
    out = []
    for r, f in zip(ratios, refined):
        # keep the refinement only where it found the same threshold (same sign, in range)
        ok = math.isfinite(r) and r != 0 and f != 0 and math.isfinite(f) and (f > 0) == (r > 0)
        out.append(f if ok else r)
    return out


def _thresholds(rule, n_slots: int, rho: torch.Tensor) -> list[float]:
    s = PROBE_AMPLITUDE * torch.clamp(1.0 / rho, max=1.0)
    current, hist = torch.cat([rho * s, rho * s], dim=1), torch.cat([-s, s], dim=1)
    n = rho.shape[1]
    steps = LAGS + 1
    gs = []
    for step in range(steps):
        g = torch.zeros((LAGS, 2 * n), dtype=torch.float64)
        if step == LAGS:
            g[:] = current
        for k in range(1, LAGS + 1):
            if step == LAGS - k:
                g[k - 1] = hist[k - 1]
        gs.append(g)
    zeros = torch.zeros_like(gs[0])
    d = _run(rule, n_slots, [zeros] * steps, gs, [1.0] * steps)[-1]
    ratios = []
    for k in range(LAGS):
        first, second = torch.sign(d[k, :n]), torch.sign(d[k, n:])
        s0 = float(first[-1])
        if s0 == 0.0 or float(second[-1]) != s0:
            ratios.append(math.inf)  # the current gradient does not decide the sign
            continue
        r = 0.0
        for half, signed in ((first, 1.0), (second, -1.0)):
            flips = torch.nonzero(half != s0)
            if len(flips):
                j = int(flips[-1])
                r = signed * math.sqrt(float(rho[k, j] * rho[k, j + 1]))
                break
        ratios.append(r)
    return ratios


def fit_betas(ratios: list[float]) -> tuple[float, float, float] | None:
    """(beta1, beta2, max log residual) of r_k = A * beta2^(k-1), A = b1 (1-b2) / (1-b1)."""
    pos = []
    if not all(math.isfinite(r) for r in ratios):
        return None
    for r in ratios:
        if r <= 0:
            break
        pos.append(r)
    if not pos:
        return None
    if len(pos) == 1:
        beta2, amp, resid = 0.0, pos[0], 0.0
    else:
        k = np.arange(1, len(pos) + 1, dtype=float)
        logs = np.log(pos)
        slope, intercept = np.polyfit(k - 1, logs, 1)
        beta2, amp = float(math.exp(slope)), float(math.exp(intercept))
        resid = float(np.max(np.abs(logs - (intercept + slope * (k - 1)))))
    if beta2 >= 1.0:
        return 1.0, beta2, resid
    beta1 = amp / (amp + 1.0 - beta2)
    return beta1, beta2, resid


def probe(program: Program) -> ProbeResult:
    """Behavioural class of a (checked) program; see the module docstring."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors; intra-op threads only contend with workers
    try:
        rule = compile_program(program, batch_dims=1)
        return _probe(rule, program.n_slots)
    except Exception as exc:  # noqa: BLE001 -- a program that cannot run is "other"
        return ProbeResult("other", {}, f"probe failed: {type(exc).__name__}: {exc}")
    finally:
        torch.set_num_threads(threads)


def _probe(rule, n_slots: int) -> ProbeResult:
    gs, w, other, lrs = _random_inputs()
    zero = torch.zeros_like(w)
    d = _run(rule, n_slots, [zero] * PROBE_STEPS, gs, lrs)
    if not bool(torch.isfinite(d).all()) or float(d.abs().max()) == 0.0:
        return ProbeResult("other", {}, "update is zero or not finite on the probe")
    if _sign_based(d):
        return _sign_outcome(rule, n_slots, d, gs, w, lrs)
    # not sign-based: adam-like = scale invariant, element-wise, with a history
    scaled = _run(rule, n_slots, [zero] * PROBE_STEPS, [10.0 * g for g in gs], lrs)
    half = PROBE_N // 2
    mixed = [torch.cat([g[:, :half], o[:, half:]], dim=1) for g, o in zip(gs, other)]
    d_mixed = _run(rule, n_slots, [zero] * PROBE_STEPS, mixed, lrs)
    prev = list(gs)
    prev[-2] = other[-2]
    d_prev = _run(rule, n_slots, [zero] * PROBE_STEPS, prev, lrs)
    invariant = _close(d, scaled)
    elementwise = _close(d[:, :, :half], d_mixed[:, :, :half])
    history = not _close(d[-1], d_prev[-1])
    facts = {"scale_invariant": invariant, "elementwise": elementwise, "history": history}
    cls = "adam_like" if invariant and elementwise and history else "other"
    return ProbeResult(cls, facts, "not sign-based")


def _sign_outcome(rule, n_slots, d, gs, w, lrs) -> ProbeResult:
    mags = np.array([float(step.abs().median()) for step in d])
    nz = mags > 0  # steps with a zero update (a zero momentum at the start) carry no scale
    lr_arr = np.array(lrs)[nz]
    mags_nz = mags[nz]
    per_lr = mags_nz / lr_arr
    scheduled = bool(np.allclose(per_lr, per_lr[-1], rtol=1e-3))
    hp: dict = {"lr": float(per_lr[-1]) if scheduled else float(mags_nz[-1]),
                "schedule": scheduled}
    d_w = _run(rule, n_slots, [w] * PROBE_STEPS, gs, lrs)
    diff = (d_w - d).reshape(PROBE_STEPS, -1)[torch.from_numpy(nz)]
    wv = w.reshape(-1)
    lam = (diff @ wv) / float(wv @ wv)
    resid = (diff - lam[:, None] * wv[None, :]).abs().max()
    if bool(torch.isfinite(diff).all()) and \
            float(resid) <= 1e-6 * float(diff.abs().max() + mags_nz.max()):
        hp["weight_decay"] = float(np.mean(lam.numpy() / mags_nz))
    else:
        hp["weight_decay"] = None  # w enters other than as a decoupled decay
    ratios = history_ratios(rule, n_slots)
    if all(r == 0.0 for r in ratios):
        return ProbeResult("sign_descent", hp, "sign-based, no dependence on earlier gradients")
    # r_k per lag (JSON-safe: "inf" where the current gradient does not decide the sign)
    hp["history"] = [round(r, 6) if math.isfinite(r) else "inf" for r in ratios]
    fit = fit_betas(ratios)
    if fit is None:
        why = ("the current gradient does not decide the sign" if math.inf in ratios
               else "r_1 <= 0")
        return ProbeResult("other", hp, f"sign-based with a history that is not a momentum "
                                        f"({why})")
    beta1, beta2, resid = fit
    hp.update(beta1=beta1, beta2=beta2)
    note = "sign-based with momentum"
    if resid > 0.05:
        note += f"; history not one EMA (log residual {resid:.2f})"
    cls = sign_momentum_class(beta1, beta2)
    if cls == "other":
        note += "; betas outside (0, 1)"
    return ProbeResult(cls, hp, note)

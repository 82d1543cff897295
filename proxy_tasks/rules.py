"""Hand-written element-wise update rules that follow the update-rule protocol.

They let the proxies be calibrated and tested without the program language (primitives/),
and they are the ground truth the calibration table reports. Each rule is a small callable
object: `update, new_state = rule(w, g, state, lr)` on stacked [K, *shape] tensors, with
`lr` the schedule value and the peak learning rate a constant of the rule, exactly like a
program. Weight decay is folded into the update before the learning rate multiplies it, as
in the reference AdamW and Lion programs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AdamW:
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    wd: float = 0.01
    eps: float = 1e-8     # the program form has none; safe division plays that part there
    n_slots = 2

    def __call__(self, w, g, state, lr):
        m, v = state
        m = torch.lerp(g, m, self.beta1)            # interp(g, m, b1) = b1*m + (1-b1)*g
        v = torch.lerp(g * g, v, self.beta2)
        update = (m / (v.sqrt() + self.eps) + self.wd * w) * (self.lr * lr)
        return update, (m, v)


@dataclass(frozen=True)
class AdamWBiasCorrected:
    """torch.optim.AdamW's rule: the program-form AdamW above plus Adam's bias correction.

    Why both: the warm start (and the Lion paper's AdamW program) has no bias correction, so
    its first steps are up to ~6x larger than the lr says (m and v start at zero; at step
    10 m/sqrt(v) is ~6.5 g/|g|); the AdamW people actually use corrects that. The third slot
    holds the step count (a full tensor, as every slot is; calibration only)."""
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    wd: float = 0.01
    eps: float = 1e-8
    n_slots = 3

    def __call__(self, w, g, state, lr):
        m, v, t = state
        m, v, t = torch.lerp(g, m, self.beta1), torch.lerp(g * g, v, self.beta2), t + 1
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        update = (m_hat / (v_hat.sqrt() + self.eps) + self.wd * w) * (self.lr * lr)
        return update, (m, v, t)


@dataclass(frozen=True)
class Signum:
    lr: float = 1e-4
    beta: float = 0.9
    wd: float = 0.1
    n_slots = 1

    def __call__(self, w, g, state, lr):
        (m,) = state
        m = torch.lerp(g, m, self.beta)
        return (torch.sign(m) + self.wd * w) * (self.lr * lr), (m,)


@dataclass(frozen=True)
class Lion:
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.99
    wd: float = 0.1
    n_slots = 1

    def __call__(self, w, g, state, lr):
        (m,) = state
        c = torch.lerp(g, m, self.beta1)
        update = (torch.sign(c) + self.wd * w) * (self.lr * lr)
        return update, (torch.lerp(g, m, self.beta2),)


@dataclass(frozen=True)
class NoUpdate:
    """Leaves the weights alone: the floor every sensible rule must beat."""
    n_slots = 0

    def __call__(self, w, g, state, lr):
        return torch.zeros_like(w), ()


@dataclass(frozen=True)
class Exploding:
    """Multiplies the weights by a large factor each step: must be caught as divergence."""
    n_slots = 0

    def __call__(self, w, g, state, lr):
        return -10.0 * w - g, ()


@dataclass(frozen=True)
class PowerSGD:
    """sign(g) * |g|^p with no state: the element-wise gradient compression the searches
    found on heavy-tailed noise (p = 1/3: `cbrt(g)`; p = 1/6 in the first default run)."""
    lr: float = 1e-2
    p: float = 1.0 / 3.0
    wd: float = 0.0
    n_slots = 0

    def __call__(self, w, g, state, lr):
        update = torch.sign(g) * g.abs().pow(self.p) + self.wd * w
        return update * (self.lr * lr), ()

"""A noisy quadratic with heavy-tailed gradient noise.

Why: it isolates the one property that separates sign methods from Adam — robustness to
rare huge gradient components — at almost no compute. Loss 0.5 * sum_i h_i (w_i - t_i)^2
with h_i = 1/i (ill-conditioned) and a fixed random optimum t (not 0, so weight decay pulls
*away* from the optimum instead of handing sign methods with larger decay a free win).
Each step's gradient is h*(w - t) + noise_scale*sqrt(h)*xi (noise covariance proportional to
curvature, like minibatch noise); xi is symmetric Pareto with tail index `tail` (< 2 means
infinite variance, the tail of a Student-t with `tail` degrees of freedom). Fitness metric:
the noise-free loss at the end (lower is better).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from optsearch.proxy_tasks import seeding
from optsearch.proxy_tasks.base import ProxyTask, TrainConfig


@dataclass(frozen=True)
class NoisyQuadraticConfig(TrainConfig):
    dim: int = 1000
    # Tail index 2.5: heavy-tailed but of finite variance. At 1.5 (infinite variance, the
    # first calibration) the sign of the *current* gradient beat every method with memory;
    # at 10 (near-Gaussian) AdamW won; in between, sign methods with memory do best
    # (docs/research/2026-12-01-calibration-round2.md).
    tail: float = 2.5
    noise_scale: float = 1.0
    # Coordinates i = 0, 1, 2 (mod 3) have their loss -- so signal and noise of their gradient
    # -- multiplied by 10^-s, 1 and 10^s (s = 4), like the tensors of a network whose gradients differ
    # by orders of magnitude. Sign methods and Adam are invariant to such a per-coordinate
    # scale; a rule that is not (cbrt(g), clip(g, c): what searches found at s = 0, measured
    # in docs/PROXIES.md) cannot pick one lr for all three. The metric is the *unscaled* loss.
    scale_spread: float = 4.0
    # True: the quadratic (curvature, noise and loss scales alike) lives in a fixed random
    # orthonormal basis (rng 5) instead of the coordinate axes, so no per-coordinate
    # normalisation can undo its ill-conditioning; a heavy-tailed noise event then moves
    # every coordinate at once. Why: on the axis-aligned quadratic any diagonal
    # normalisation wins (the exploits in docs/PROXIES.md); the rotated one asks for
    # momentum and robustness to outliers instead. Costs a dim x dim matmul per step.
    rotate: bool = False
    steps: int = 2000
    metric: str = "loss"
    failure_metric: float = 100.0    # the initial loss is ~sum(1/i) ~ 7.5 for dim 1000
    divergence_factor: float = 50.0


SCALES = {
    0: NoisyQuadraticConfig(dim=50, steps=50),
    1: NoisyQuadraticConfig(),
    10: NoisyQuadraticConfig(dim=10_000, steps=8000),
    100: NoisyQuadraticConfig(dim=100_000, steps=32_000),
}


def heavy_tailed(gen: torch.Generator, shape, tail: float) -> torch.Tensor:
    """Symmetric Pareto noise: sign * (U^(-1/tail) - 1); torch.rand keeps it cheap per step."""
    u = torch.rand((2, *shape), generator=gen)
    return torch.sign(u[0] - 0.5) * (u[1].clamp_min(1e-12).pow(-1.0 / tail) - 1.0)


class NoisyQuadratic(ProxyTask):
    name = "noisy_quadratic"
    salt = 53

    def load_data(self):
        dim = self.config.dim
        target = np.random.default_rng(0).standard_normal(dim).astype(np.float32)
        exponent = (np.arange(dim) % 3 - 1) * self.config.scale_spread
        data = {"h": (1.0 / np.arange(1, dim + 1)).astype(np.float32), "target": target,
                "loss_scale": (10.0 ** exponent).astype(np.float32)}
        if self.config.rotate:   # own generator: the target and scales stay as they were
            q, r = np.linalg.qr(np.random.default_rng(5).standard_normal((dim, dim)))
            data["basis"] = (q * np.sign(np.diag(r))).astype(np.float32)   # Haar-distributed
        return data

    def init_params(self, seeds, device):
        rngs = seeding.seed_rngs(seeds, self.salt, seeding.INIT)
        return {"w": seeding.normal(rngs, (self.config.dim,), 1.0, device)}

    def batches(self, seeds, data, device):
        c = self.config
        gens = [torch.Generator().manual_seed(int(r.integers(2**62)))
                for r in seeding.seed_rngs(seeds, self.salt, seeding.DATA)]
        scale = c.noise_scale * data["h"].sqrt()
        chunk, buf = 64, []

        def next_batch():
            if not buf:   # 64 steps of noise per seed at once: per-step sampling cost ~nothing
                noise = torch.stack([heavy_tailed(g, (chunk, c.dim), c.tail) for g in gens], 1)
                buf.extend((noise.to(device) * scale).unbind(0)[::-1])
            return buf.pop(), data["h"], data["target"], data["loss_scale"], data.get("basis")
        return next_batch

    def repeat_batch(self, batch, groups):
        noise, *shared = batch   # h, target, loss_scale and basis are the same for everyone
        return (noise.repeat(groups, 1), *shared)

    def loss(self, params, batch):
        noise, h, target, loss_scale, basis = batch
        d = _eigen_coordinates(params["w"] - target, basis)
        clean = 0.5 * (h * d * d).sum(dim=1)
        # gradient = loss_scale * (h*(w - t) + noise); value = the unscaled noise-free loss
        # (for divergence checks), so the scales change gradients only
        scaled = 0.5 * (loss_scale * h * d * d).sum(dim=1) + (loss_scale * noise * d).sum(dim=1)
        return clean.detach() + scaled - scaled.detach()

    def evaluate(self, params, data):
        d = _eigen_coordinates(params["w"] - data["target"], data.get("basis"))
        return {"loss": 0.5 * (data["h"] * d * d).sum(dim=1)}


def _eigen_coordinates(d: torch.Tensor, basis) -> torch.Tensor:
    """[K, dim] offsets from the optimum in the quadratic's eigenbasis (the axes if none)."""
    return d if basis is None else d @ basis

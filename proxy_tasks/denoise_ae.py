"""Image restoration: a denoising autoencoder on 8x8 grey patches of sklearn's sample photos.

Why: a regression task with a bottleneck and a dense output, scored by PSNR — a different
loss landscape from classification. Patches come from sklearn's bundled china.jpg and
flower.jpg (offline). Each seed draws its own Gaussian corruption every step; validation
uses one fixed corruption. Fitness metric: validation MSE to the clean patches (lower is
better; `neg_psnr` = 10*log10(MSE), the same ranking in dB, is reported as well).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from optsearch.proxy_tasks import layers, seeding
from optsearch.proxy_tasks.base import ProxyTask, TrainConfig


@dataclass(frozen=True)
class DenoiseConfig(TrainConfig):
    patch: int = 8
    stride: int = 8
    hidden: tuple = (64, 32, 64)      # encoder -> bottleneck -> decoder widths
    noise_std: float = 0.1
    steps: int = 1000
    batch_size: int = 32
    n_val: int = 1024
    # MSE, not -PSNR: fitness is a ratio to AdamW's metric, which needs a positive metric
    # (an MSE ratio r is a PSNR difference of 10*log10(r) dB). -PSNR is reported too.
    metric: str = "mse"
    failure_metric: float = 1.0       # pixels lie in [0, 1]: the worst possible MSE
    divergence_factor: float = 20.0


SCALES = {
    0: DenoiseConfig(hidden=(16, 8, 16), steps=30, batch_size=8, stride=16, n_val=128),
    1: DenoiseConfig(),
    10: DenoiseConfig(hidden=(256, 64, 256), steps=3000, batch_size=64, stride=4),
    100: DenoiseConfig(hidden=(1024, 128, 1024), steps=10000, batch_size=128, stride=2,
                       n_val=4096),
}


def _patches(image: np.ndarray, size: int, stride: int) -> np.ndarray:
    grey = image.astype(np.float32).mean(axis=2) / 255.0
    windows = np.lib.stride_tricks.sliding_window_view(grey, (size, size))[::stride, ::stride]
    return windows.reshape(-1, size * size)


class DenoiseAE(ProxyTask):
    name = "denoise_ae"
    salt = 37

    def load_data(self):
        from sklearn.datasets import load_sample_images
        c = self.config
        x = np.concatenate([_patches(im, c.patch, c.stride) for im in load_sample_images().images])
        x = x[np.random.default_rng(0).permutation(len(x))]   # fixed split for every seed
        val, train = x[: c.n_val], x[c.n_val:]
        noise = np.random.default_rng(1).standard_normal(val.shape).astype(np.float32)
        return {"train": np.ascontiguousarray(train),
                "val_clean": np.ascontiguousarray(val), "val_noisy": val + c.noise_std * noise}

    def init_params(self, seeds, device):
        params, dim = {}, self.config.patch ** 2
        layers.init_mlp(params, seeding.seed_rngs(seeds, self.salt, seeding.INIT),
                        (dim, *self.config.hidden, dim), device, out=self._out)
        return params

    def batches(self, seeds, data, device):
        c = self.config
        stream = seeding.IndexStream(seeding.seed_rngs(seeds, self.salt, seeding.DATA),
                                     len(data["train"]), c.batch_size, device)
        noise_rngs = seeding.seed_rngs(seeds, self.salt, seeding.DATA + 10)
        dim = c.patch ** 2

        def next_batch():
            clean = data["train"][stream.next()]
            noise = seeding.normal(noise_rngs, (c.batch_size, dim), c.noise_std, device)
            return clean + noise, clean
        return next_batch

    @property
    def _out(self) -> str:
        # The output layer continues the hidden layers' names (fc0..fcN).
        return f"fc{len(self.config.hidden)}"

    def forward(self, params, x):
        return layers.mlp(params, x, len(self.config.hidden), out=self._out)

    def loss(self, params, batch):
        noisy, clean = batch
        return layers.per_seed_mean((self.forward(params, noisy) - clean) ** 2)

    def evaluate(self, params, data):
        k = next(iter(params.values())).shape[0]
        noisy = data["val_noisy"].expand(k, *data["val_noisy"].shape)
        mse = layers.per_seed_mean((self.forward(params, noisy) - data["val_clean"]) ** 2)
        return {"neg_psnr": 10.0 * torch.log10(mse), "mse": mse}

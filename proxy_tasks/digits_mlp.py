"""Digits classification with a small MLP (sklearn's bundled 8x8 digits, 1,797 images).

Why this task: it is the cheapest real classification problem available offline, and the
scratch data said its metric, horizon and batch size decide whether sign momentum wins.
Fitness metric: validation error rate (lower is better); validation loss is also reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from optsearch.proxy_tasks import layers, seeding
from optsearch.proxy_tasks.base import ProxyTask, TrainConfig


@dataclass(frozen=True)
class DigitsMLPConfig(TrainConfig):
    hidden: tuple = (32,)
    steps: int = 1000
    batch_size: int = 16
    metric: str = "error"
    failure_metric: float = 1.0      # error rate of a model that gets everything wrong
    val_fraction: float = 0.2
    label_noise: float = 0.0         # fraction of training labels replaced at random (fixed)


SCALES = {
    0: DigitsMLPConfig(hidden=(8,), steps=30, batch_size=8),
    1: DigitsMLPConfig(),
    10: DigitsMLPConfig(hidden=(128, 64), steps=4000, batch_size=32),
    100: DigitsMLPConfig(hidden=(512, 256), steps=12000, batch_size=128),
}


class DigitsMLP(ProxyTask):
    name = "digits_mlp"
    salt = 11
    revision = 1          # 1: the cross-entropy's softmax runs over dim 1 (layers.py)

    def load_data(self):
        from sklearn.datasets import load_digits
        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype(np.float32)
        order = np.random.default_rng(0).permutation(len(y))   # fixed split for every seed
        n_val = round(self.config.val_fraction * len(y))
        val, train = order[:n_val], order[n_val:]
        y_train = y[train].copy()
        if self.config.label_noise > 0:
            rng = np.random.default_rng(1)
            flip = rng.random(len(train)) < self.config.label_noise
            y_train[flip] = rng.integers(0, 10, size=int(flip.sum()))
        return {"x_train": x[train], "y_train": y_train.astype(np.int64),
                "x_val": x[val], "y_val": y[val].astype(np.int64)}

    def init_params(self, seeds, device):
        rngs = seeding.seed_rngs(seeds, self.salt, seeding.INIT)
        params, width = {}, 64
        for i, h in enumerate(self.config.hidden):
            layers.init_linear(params, f"fc{i}", rngs, width, h, device)
            width = h
        layers.init_linear(params, "out", rngs, width, 10, device, gain=0.5)
        return params

    def batches(self, seeds, data, device):
        rngs = seeding.seed_rngs(seeds, self.salt, seeding.DATA)
        stream = seeding.IndexStream(rngs, len(data["y_train"]), self.config.batch_size, device)
        x, y = data["x_train"], data["y_train"]

        def next_batch():
            idx = stream.next()
            return x[idx], y[idx]
        return next_batch

    def forward(self, params, x):
        for i in range(len(self.config.hidden)):
            x = torch.relu(layers.linear(params, f"fc{i}", x))
        return layers.linear(params, "out", x)

    def loss(self, params, batch):
        x, y = batch
        return layers.cross_entropy(self.forward(params, x), y)

    def evaluate(self, params, data):
        k = next(iter(params.values())).shape[0]
        x = data["x_val"].expand(k, *data["x_val"].shape)
        y = data["y_val"].expand(k, *data["y_val"].shape)
        logits = self.forward(params, x)
        error = (logits.argmax(-1) != y).float().mean(dim=1)
        return {"error": error, "loss": layers.cross_entropy(logits, y)}

"""Digits classification with a small MLP (sklearn's bundled 8x8 digits, 1,797 images).

Why this task: it is the cheapest real classification problem available offline, and the
scratch data said its metric, horizon and batch size decide whether sign momentum wins.
Fitness metric: validation error rate (lower is better); validation loss is also reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optsearch.proxy_tasks import layers, seeding
from optsearch.proxy_tasks.base import TrainConfig
from optsearch.proxy_tasks.mlp import MLPClassifier


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


class DigitsMLP(MLPClassifier):
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

    def widths(self):
        return (64, *self.config.hidden, 10)

    def batches(self, seeds, data, device):
        return seeding.pool_batches(seeding.seed_rngs(seeds, self.salt, seeding.DATA),
                                    data["x_train"], data["y_train"], self.config.batch_size,
                                    device)

    def evaluate(self, params, data):
        k = next(iter(params.values())).shape[0]
        x = data["x_val"].expand(k, *data["x_val"].shape)
        y = data["y_val"].expand(k, *data["y_val"].shape)
        logits = self.forward(params, x)
        error = (logits.argmax(-1) != y).float().mean(dim=1)
        return {"error": error, "loss": layers.cross_entropy(logits, y)}

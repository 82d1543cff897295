"""Teacher-student classification: a small MLP learns labels drawn from a fixed random teacher.

Why: the bundled real data sets are tiny (1,797 digits), so their validation metrics are
noisy and saturate, and they cannot be used at large batch sizes without many epochs of
overfitting. A synthetic teacher gives as much data as a config asks for, with aleatoric
label noise (labels are *sampled* from the teacher's softmax at temperature `temperature`),
so batch size, horizon and noise can be varied independently -- the axes along which the
Lion paper reports its advantage over AdamW. Fitness metric: the expected test
cross-entropy against the teacher's label distribution on a fixed test set, minus its floor
(the teacher's entropy): `kl` = KL(teacher || student) averaged over the test inputs. It is
the test loss averaged over infinitely many label draws, so it carries no label noise of its
own; `loss` (the cross-entropy itself) and `entropy` are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from proxy_tasks import layers, seeding
from proxy_tasks.base import ProxyTask, TrainConfig


@dataclass(frozen=True)
class TeacherStudentConfig(TrainConfig):
    d_in: int = 32
    classes: int = 10
    teacher_hidden: int = 64
    hidden: tuple = (64,)
    temperature: float = 0.5     # teacher logits / T before sampling: lower = cleaner labels
    n_train: int = 50_000
    n_test: int = 4096
    steps: int = 2000
    batch_size: int = 128
    metric: str = "kl"
    failure_metric: float = 10.0
    divergence_factor: float = 5.0


SCALES = {
    0: TeacherStudentConfig(hidden=(8,), steps=30, batch_size=16, n_train=2000, n_test=256),
    1: TeacherStudentConfig(),
    10: TeacherStudentConfig(hidden=(256, 128), steps=8000, batch_size=256, n_train=500_000),
    100: TeacherStudentConfig(hidden=(1024, 512), steps=30_000, batch_size=1024,
                              n_train=2_000_000),
}


def _teacher(cfg: TeacherStudentConfig, x: np.ndarray) -> np.ndarray:
    """Fixed random 2-layer tanh teacher (rng 0): logits scaled to unit variance, / T."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((cfg.d_in, cfg.teacher_hidden)) / np.sqrt(cfg.d_in)
    w2 = rng.standard_normal((cfg.teacher_hidden, cfg.classes)) / np.sqrt(cfg.teacher_hidden)
    logits = np.tanh(x @ w1 * 2.0) @ w2
    logits /= logits.std() * cfg.temperature
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


class TeacherStudent(ProxyTask):
    name = "teacher_student"
    salt = 71

    def load_data(self):
        cfg = self.config
        rng = np.random.default_rng(1)
        x_train = rng.standard_normal((cfg.n_train, cfg.d_in)).astype(np.float32)
        x_test = rng.standard_normal((cfg.n_test, cfg.d_in)).astype(np.float32)
        p_train = _teacher(cfg, x_train)
        # one fixed label draw per training example (inverse-CDF sampling, rng 2)
        u = np.random.default_rng(2).random((cfg.n_train, 1))
        y_train = np.minimum((p_train.cumsum(axis=1) < u).sum(axis=1), cfg.classes - 1)
        return {"x_train": x_train, "y_train": y_train.astype(np.int64), "x_test": x_test,
                "p_test": _teacher(cfg, x_test).astype(np.float32)}

    def init_params(self, seeds, device):
        rngs = seeding.seed_rngs(seeds, self.salt, seeding.INIT)
        params, width = {}, self.config.d_in
        for i, h in enumerate(self.config.hidden):
            layers.init_linear(params, f"fc{i}", rngs, width, h, device)
            width = h
        layers.init_linear(params, "out", rngs, width, self.config.classes, device, gain=0.5)
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
        x = data["x_test"].expand(k, *data["x_test"].shape)
        logp = torch.log_softmax(self.forward(params, x), dim=-1)
        p = data["p_test"]
        expected_ce = -(p * logp).sum(-1).mean(-1)
        entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1).mean()
        return {"kl": expected_ce - entropy, "loss": expected_ce, "entropy": entropy.expand(k)}

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

from optsearch.proxy_tasks import seeding
from optsearch.proxy_tasks.base import TrainConfig
from optsearch.proxy_tasks.mlp import MLPClassifier


@dataclass(frozen=True)
class TeacherStudentConfig(TrainConfig):
    d_in: int = 32
    classes: int = 10
    teacher_hidden: int = 16     # narrower than the student: it can be fitted exactly
    hidden: tuple = (64,)
    temperature: float = 0.5     # teacher logits / T before sampling: lower = cleaner labels
    teacher_bias: float = 0.0    # mean and s.d. of the teacher's hidden biases (0: none); why:
                                 # a bias-free teacher rewards rules that pull the student's
                                 # hidden biases to mean zero (docs/PROXIES.md, 2026-12-03)
    student_bias: bool = True    # False: the student's hidden layers have no biases, so there
                                 # are none to centre (the same exploit, removed at the source)
    n_train: int = 0             # 0: a fresh example every time (a stream); N: a fixed pool
    n_test: int = 4096
    steps: int = 1000
    batch_size: int = 128
    metric: str = "kl"
    failure_metric: float = 10.0
    divergence_factor: float = 5.0


SCALES = {
    0: TeacherStudentConfig(hidden=(8,), steps=30, batch_size=16, n_test=256),
    1: TeacherStudentConfig(),
    10: TeacherStudentConfig(hidden=(256, 128), steps=4000, batch_size=256),
    100: TeacherStudentConfig(hidden=(1024, 512), steps=16_000, batch_size=1024),
}


def teacher(cfg: TeacherStudentConfig) -> dict[str, np.ndarray]:
    """Fixed random 2-layer ReLU teacher (rng 0), its logits scaled to unit variance / T.

    The student has the teacher's architecture but is wider, so the excess test loss is
    optimisation and estimation error, not a capacity limit every optimizer shares."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((cfg.d_in, cfg.teacher_hidden)) / np.sqrt(cfg.d_in)
    w2 = rng.standard_normal((cfg.teacher_hidden, cfg.classes)) / np.sqrt(cfg.teacher_hidden)
    # own generator, so teachers without biases keep the weights (and draws) they had
    b1 = cfg.teacher_bias * (1.0 + np.random.default_rng(4).standard_normal(cfg.teacher_hidden))
    probe = np.random.default_rng(3).standard_normal((8192, cfg.d_in))
    scale = 1.0 / ((np.maximum(probe @ w1 + b1, 0.0) @ w2).std() * cfg.temperature)
    return {"t_w1": w1.astype(np.float32), "t_b1": b1.astype(np.float32),
            "t_w2": (w2 * scale).astype(np.float32)}


def teacher_probs(t: dict, x: np.ndarray) -> np.ndarray:
    logits = np.maximum(x @ t["t_w1"] + t["t_b1"], 0.0) @ t["t_w2"]
    logits = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=-1, keepdims=True)


def sample_labels(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row of p (inverse-CDF sampling)."""
    u = rng.random((*p.shape[:-1], 1))
    return np.minimum((p.cumsum(axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)


class TeacherStudent(MLPClassifier):
    name = "teacher_student"
    salt = 71
    revision = 2          # 1: cross-entropy over dim 1 (layers.py); 2: the stream in torch

    def load_data(self):
        cfg = self.config
        t = teacher(cfg)
        rng = np.random.default_rng(1)
        x_test = rng.standard_normal((cfg.n_test, cfg.d_in)).astype(np.float32)
        data = {**t, "x_test": x_test, "p_test": teacher_probs(t, x_test).astype(np.float32)}
        if cfg.n_train:   # a fixed pool with one fixed label draw per example (rng 2)
            x_train = rng.standard_normal((cfg.n_train, cfg.d_in)).astype(np.float32)
            y = sample_labels(teacher_probs(t, x_train), np.random.default_rng(2))
            data.update(x_train=x_train, y_train=y.astype(np.int64))
        return data

    def widths(self):
        return (self.config.d_in, *self.config.hidden, self.config.classes)

    @property
    def hidden_bias(self):
        return self.config.student_bias

    def batches(self, seeds, data, device):
        rngs = seeding.seed_rngs(seeds, self.salt, seeding.DATA)
        if not self.config.n_train:
            return self._stream(rngs, data, device)
        return seeding.pool_batches(rngs, data["x_train"], data["y_train"],
                                    self.config.batch_size, device)

    def _stream(self, rngs, data, device, chunk: int = 64):
        """Fresh examples every step (no epochs, nothing to overfit), `chunk` steps at a time;
        seed k's examples come from seed k's generator only, and its teacher labels from a
        matmul of the same shape whatever K is, so a seed's stream does not depend on K.

        Why torch, not numpy: drawing and labelling the stream was 38% of a stacked step;
        torch's float32 sampler and a softmax over a leading class dim make it ~2.7x cheaper
        (revision 2)."""
        cfg, buf = self.config, []
        gens = [torch.Generator().manual_seed(int(r.integers(2**62))) for r in rngs]
        w1, b1, w2 = (data[k].cpu() for k in ("t_w1", "t_b1", "t_w2"))

        def labelled(gen):
            x = torch.randn((chunk, cfg.batch_size, cfg.d_in), generator=gen)
            u = torch.rand((chunk, cfg.batch_size), generator=gen)
            p = torch.softmax((torch.relu(x @ w1 + b1) @ w2).movedim(-1, 0), dim=0)  # [C,chunk,B]
            y = (p.cumsum(dim=0) < u).sum(dim=0).clamp_max(cfg.classes - 1)      # inverse CDF
            return x, y

        def next_batch():
            if not buf:
                xs, ys = zip(*(labelled(g) for g in gens))
                x, y = torch.stack(xs, 1).to(device), torch.stack(ys, 1).to(device)
                buf.extend(zip(x.unbind(0)[::-1], y.unbind(0)[::-1]))
            return buf.pop()
        return next_batch

    def evaluate(self, params, data):
        k = next(iter(params.values())).shape[0]
        x = data["x_test"].expand(k, *data["x_test"].shape)
        logp = torch.log_softmax(self.forward(params, x), dim=-1)
        p = data["p_test"]
        expected_ce = -(p * logp).sum(-1).mean(-1)
        entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1).mean()
        return {"kl": expected_ce - entropy, "loss": expected_ce, "entropy": entropy.expand(k)}

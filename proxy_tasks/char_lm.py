"""Character-level language modelling with a tiny pre-LN transformer on stdlib source.

Why: transformers are where Lion was shown to help, and attention + LayerNorm + embeddings
give parameter tensors with very different gradient statistics than an MLP. ReLU rather than
GELU in the MLP block: on one CPU thread GELU's backward costs ~10% of a step. Every seed has
its own weights; activations are [K, B, T, D] and the attention runs over K*B sequences.
Fitness metric: validation cross-entropy in nats per character (lower is better).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from optsearch.proxy_tasks import layers, seeding
from optsearch.proxy_tasks.base import ProxyTask, TrainConfig
from optsearch.proxy_tasks.corpus import VOCAB, corpus_bytes


@dataclass(frozen=True)
class CharLMConfig(TrainConfig):
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 1
    context: int = 32
    steps: int = 400
    batch_size: int = 8
    corpus_bytes: int = 200_000
    val_fraction: float = 0.1
    val_sequences: int = 64
    metric: str = "loss"
    failure_metric: float = 10.0     # > ln(128) = 4.85, the loss of a uniform guess
    divergence_factor: float = 3.0   # CE starts near ln(128); 3x that is clearly broken


SCALES = {
    0: CharLMConfig(d_model=16, context=16, steps=20, batch_size=4, corpus_bytes=50_000),
    1: CharLMConfig(),
    10: CharLMConfig(d_model=64, n_heads=4, n_layers=2, context=64, steps=1000, batch_size=32,
                     corpus_bytes=400_000, val_sequences=128),
    100: CharLMConfig(d_model=128, n_heads=4, n_layers=4, context=128, steps=3000,
                      batch_size=64, corpus_bytes=1_000_000, val_sequences=256),
}


class CharLM(ProxyTask):
    name = "char_lm"
    salt = 23
    revision = 1          # 1: the cross-entropy's softmax runs over dim 1 (layers.py)

    def load_data(self):
        text = corpus_bytes(self.config.corpus_bytes).astype(np.int64)
        n_val = int(self.config.val_fraction * len(text))
        train, val = text[:-n_val], text[-n_val:]
        t = self.config.context + 1
        starts = np.linspace(0, len(val) - t, self.config.val_sequences).astype(np.int64)
        val_seqs = np.stack([val[s:s + t] for s in starts])  # fixed, evenly spaced windows
        return {"train": train, "val": val_seqs}

    def init_params(self, seeds, device):
        c, rngs = self.config, seeding.seed_rngs(seeds, self.salt, seeding.INIT)
        k, d = len(rngs), c.d_model
        p = {"tok": seeding.normal(rngs, (VOCAB, d), 0.1, device),
             "pos": seeding.normal(rngs, (c.context, d), 0.02, device)}
        for i in range(c.n_layers):
            p[f"l{i}.ln1"] = seeding.ones(k, (d,), device)
            layers.init_linear(p, f"l{i}.qkv", rngs, d, 3 * d, device, gain=0.7)
            layers.init_linear(p, f"l{i}.proj", rngs, d, d, device, gain=0.3)
            p[f"l{i}.ln2"] = seeding.ones(k, (d,), device)
            layers.init_linear(p, f"l{i}.fc1", rngs, d, 4 * d, device)
            layers.init_linear(p, f"l{i}.fc2", rngs, 4 * d, d, device, gain=0.3)
        p["lnf"] = seeding.ones(k, (d,), device)
        layers.init_linear(p, "head", rngs, d, VOCAB, device, gain=0.5)
        return p

    def batches(self, seeds, data, device):
        rngs = seeding.seed_rngs(seeds, self.salt, seeding.DATA)
        t = self.config.context + 1
        stream = seeding.IndexStream(rngs, len(data["train"]) - t, self.config.batch_size, device)
        offsets = torch.arange(t, device=device)
        text = data["train"]
        return lambda: text[stream.next().unsqueeze(-1) + offsets]   # [K, B, T+1]

    def attention(self, p, i, x):
        k, b, t, d = x.shape
        h = self.config.n_heads
        q, kk, v = layers.linear(p, f"l{i}.qkv", x).split(d, dim=-1)
        heads = [z.reshape(k * b, t, h, d // h).transpose(1, 2) for z in (q, kk, v)]
        y = F.scaled_dot_product_attention(*heads, is_causal=True)
        return layers.linear(p, f"l{i}.proj", y.transpose(1, 2).reshape(k, b, t, d))

    def forward(self, p, tokens):
        k = tokens.shape[0]
        seed_ix = torch.arange(k, device=tokens.device).view(k, 1, 1)
        x = p["tok"][seed_ix, tokens] + p["pos"][:, None, : tokens.shape[-1]]
        for i in range(self.config.n_layers):
            x = x + self.attention(p, i, layers.layer_norm(x, p[f"l{i}.ln1"]))
            hdn = torch.relu(layers.linear(p, f"l{i}.fc1", layers.layer_norm(x, p[f"l{i}.ln2"])))
            x = x + layers.linear(p, f"l{i}.fc2", hdn)
        return layers.linear(p, "head", layers.layer_norm(x, p["lnf"]))

    def loss(self, params, batch):
        return layers.cross_entropy(self.forward(params, batch[..., :-1]), batch[..., 1:])

    def evaluate(self, params, data):
        k = next(iter(params.values())).shape[0]
        seqs = data["val"].expand(k, *data["val"].shape)
        return {"loss": layers.cross_entropy(self.forward(params, seqs[..., :-1]), seqs[..., 1:])}

"""The stacked-seed ReLU MLP classifier that digits_mlp and teacher_student train.

A subclass supplies the data, the evaluation and the layer widths; the model (a
`layers.init_mlp` network over `config.hidden`) and its cross-entropy loss on `(x, y)`
batches are shared, so the two classification tasks cannot drift apart in how they train.
"""

from __future__ import annotations

from optsearch.proxy_tasks import layers, seeding
from optsearch.proxy_tasks.base import ProxyTask


class MLPClassifier(ProxyTask):
    hidden_bias = True    # whether the hidden layers have biases (the output layer always does)

    def widths(self) -> tuple[int, ...]:
        """(input, *config.hidden, classes)."""
        raise NotImplementedError

    def init_params(self, seeds, device):
        params = {}
        layers.init_mlp(params, seeding.seed_rngs(seeds, self.salt, seeding.INIT),
                        self.widths(), device, hidden_bias=self.hidden_bias)
        return params

    def forward(self, params, x):
        return layers.mlp(params, x, len(self.config.hidden))

    def loss(self, params, batch):
        x, y = batch
        return layers.cross_entropy(self.forward(params, x), y)

"""Per-seed randomness for K seeds trained as one stacked model.

Every seed owns independent numpy generators (one for its initialisation, one for its data
stream), keyed by (seed, task salt, purpose). A seed's trajectory therefore does not depend
on which other seeds share the batch: training seeds [0..7] together gives seed 3 exactly
the initialisation and batches it gets when trained alone. numpy's PCG64 streams are stable
across platforms and versions, which keeps results reproducible for the fitness cache.
"""

import numpy as np
import torch

INIT, DATA = 1, 2


def seed_rngs(seeds, salt: int, purpose: int) -> list[np.random.Generator]:
    return [np.random.default_rng([int(s), salt, purpose]) for s in seeds]


def stacked(rngs, draw, device="cpu") -> torch.Tensor:
    """Stack `draw(rng) -> ndarray` over seeds into a float32 tensor with a leading K dim."""
    arrays = [np.asarray(draw(rng), dtype=np.float32) for rng in rngs]
    return torch.from_numpy(np.stack(arrays)).to(device)


def normal(rngs, shape, std: float, device="cpu") -> torch.Tensor:
    return stacked(rngs, lambda r: r.standard_normal(shape) * std, device)


def zeros(k: int, shape, device="cpu") -> torch.Tensor:
    return torch.zeros((k, *shape), device=device)


def ones(k: int, shape, device="cpu") -> torch.Tensor:
    return torch.ones((k, *shape), device=device)


class IndexStream:
    """Per-seed minibatch indices, drawn in chunks so sampling costs ~nothing per step.

    Yields LongTensor[K, batch] of example indices; seed k's rows depend only on seed k.
    """

    def __init__(self, rngs, n: int, batch: int, device="cpu", chunk: int = 256):
        self.rngs, self.n, self.batch, self.device, self.chunk = rngs, n, batch, device, chunk
        self._buf, self._pos = None, chunk

    def next(self) -> torch.Tensor:
        if self._pos == self.chunk:
            draws = [r.integers(0, self.n, size=(self.chunk, self.batch)) for r in self.rngs]
            self._buf = torch.from_numpy(np.stack(draws, axis=1)).to(self.device)
            self._pos = 0
        out = self._buf[self._pos]
        self._pos += 1
        return out


def pool_batches(rngs, x: torch.Tensor, y: torch.Tensor, batch: int, device="cpu"):
    """next_batch() -> (x[idx], y[idx]): minibatches of a fixed labelled pool, each seed
    drawing its own indices (an `IndexStream`)."""
    stream = IndexStream(rngs, len(y), batch, device)

    def next_batch():
        idx = stream.next()
        return x[idx], y[idx]
    return next_batch

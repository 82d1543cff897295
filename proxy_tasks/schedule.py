"""Learning-rate schedule shared by every proxy task.

The schedule is part of the *task*, not of the candidate program: the program receives the
schedule value (peak 1.0) as its `lr` input and multiplies it by its own peak learning rate
constant, so the search tunes the peak while every candidate sees the same shape.
"""

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up from 1/warmup to 1.0, then cosine decay to 0 at the last step."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))

"""What happens to the teacher-student student's hidden biases under AdamW, centred AdamW and
Lion (the ts512 exploit's ablation, docs/PROXIES.md 2026-12-03).

    .venv/bin/python -m scripts.research.diag_hidden_biases        # ~16 s on 2 cores

Trains ts512's task (batch 512, 1000 steps) on fresh seeds 1000-1007 with each rule at its
tuned lr (docs/research/2026-12-03-ts512-exploit.md) and prints, at steps 100 and 1000, the
hidden biases' mean and s.d., the fraction of hidden activations that are positive on the
test inputs, the fraction of units dead on all of them, and the final KL.
"""

from __future__ import annotations

import sys

import torch

from optsearch.proxy_tasks import get_task
from optsearch.proxy_tasks.base import to_tensors
from optsearch.proxy_tasks.rules import AdamW, Lion
from scripts.research.ablate_centering import CentredAdamW

RULES = {   # lr as tuned by rank_rules on ts512 (centre:b1: rank_rules lr 0.0215 x 0.8)
    "adamw .9/.999": AdamW(lr=0.01),
    "centre:b1": CentredAdamW(0.0215 * 0.8, ("b1",)),
    "lion .8/.95": Lion(lr=0.01, beta1=0.8, beta2=0.95),
}


def hidden_stats(params, x_test) -> str:
    with torch.no_grad():
        x = x_test.expand(params["fc0.w"].shape[0], *x_test.shape)
        h = torch.baddbmm(params["fc0.b"].unsqueeze(1), x, params["fc0.w"])
        dead = (h <= 0).all(dim=1).float().mean().item()
        b = params["fc0.b"]
        return (f"bias mean {b.mean().item():+.3f} s.d. {b.std().item():.3f}, "
                f"active {(h > 0).float().mean().item():.3f}, dead units {dead:.3f}")


def train(task, data, rule, seeds, report_at=(100, 999)) -> list[str]:
    lines = []

    def observe(step, params):
        if step in report_at:
            lines.append(f"step {step + 1:4d}: " + hidden_stats(params, data["x_test"]))
    result = task.run(rule, seeds, task.load_data(), observe=observe)
    return lines + [f"KL {sum(result.metric) / len(result.metric):.5f}"]


def main() -> int:
    task = get_task("teacher_student", 1, batch_size=512)
    data = to_tensors(task.load_data(), "cpu")   # for the statistics; run() loads its own
    for name, rule in RULES.items():
        for line in train(task, data, rule, list(range(1000, 1008))):
            print(f"{name:14s} {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

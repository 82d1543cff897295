"""Which tensor carries the ts512 exploit? AdamW (β1 0.23, β2 0.999, no weight decay) with the
winner's `update + mean(w)` applied to some of the teacher-student student's tensors only.

The ts512 search's seed-0 winner (scripts/research/winners/adamw_mean_shift.py) beats tuned Lion by
shifting every tensor's update by that tensor's mean. These variants ("centre:SET") add the
shift to one group at a time, so rank_rules can say where it acts. Rules see only the stacked
tensors, not their names, so the groups are told apart by shape; this is valid for the default
student only (d_in 32, one hidden layer of 64, 10 classes), and the script refuses others.

    .venv/bin/python -m scripts.research.ablate_centering --tasks teacher_student:batch_size=512 \
        --seeds 8 --only centre:none centre:all centre:W1 centre:b1 centre:Wout centre:bout \
        --lr-min 3e-3 --lr-max 0.1

Every other rank_rules option and variant works as there (this only adds variants).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from scripts.research import rank_rules

D_IN, HIDDEN = 32, 64          # the default TeacherStudentConfig's student


def group(w: torch.Tensor) -> str:
    """'W1', 'b1', 'Wout' or 'bout' for a stacked [K, ...] tensor of the default student."""
    if w.ndim == 3:
        return "W1" if w.shape[1] == D_IN else "Wout"
    return "b1" if w.shape[1] == HIDDEN else "bout"


@dataclass(frozen=True)
class CentredAdamW:
    """The winner's rule (its constants, its 8x step) with the mean shift on `where` only."""
    lr: float
    where: tuple
    beta1: float = 0.23386241607774227
    n_slots = 2

    def __call__(self, w, g, state, lr):
        m, v = state
        m = torch.lerp(g, m, self.beta1)
        v = torch.lerp(g * g, v, 0.999)
        u = m / v.sqrt().clamp_min(1e-30)
        if group(w) in self.where:
            u = u + w.mean(dim=tuple(range(1, w.ndim)), keepdim=True)   # per seed, like mean()
        return u * (self.lr * lr), (m, v)


GROUPS = {"none": (), "all": ("W1", "b1", "Wout", "bout"), "W1": ("W1",), "b1": ("b1",),
          "Wout": ("Wout",), "bout": ("bout",)}


def register() -> None:
    # lr * 0.8: the program's factor at rank_rules' grid centre (lr 1e-2 = the winner's 8e-3)
    for label, where in GROUPS.items():
        rank_rules.VARIANTS[f"centre:{label}"] = (
            lambda lr, where=where: CentredAdamW(lr * 0.8, where))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a.startswith("teacher_student") and ("hidden" in a or "d_in" in a) for a in argv):
        print("error: ablate_centering: the groups assume the default student "
              "(d_in 32, hidden (64,))", file=sys.stderr)
        return 2
    register()
    return rank_rules.main(argv, prog="python -m scripts.research.ablate_centering",
                           description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())

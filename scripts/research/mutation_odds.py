"""How far is sign momentum from the warm start? Outcome classes of one-mutation children.

Samples N children of a parent program with the search's own mutator (valid, structurally
changed children: what the driver proposes), or N descendants --depth mutations away (each
mutating the last, with no selection between: the odds that unguided steps bridge a gap
such as Signum -> Lion), and classifies each one's live behaviour
(search.outcome). The fraction that is sign momentum / sign descent bounds how many
proposals a search needs before selection can act on such a program at all.

    .venv/bin/python -m scripts.research.mutation_odds --parent adamw --n 20000
    .venv/bin/python -m scripts.research.mutation_odds --replace-weight 0   # the paper's operators
    .venv/bin/python -m scripts.research.mutation_odds --parent signum --depth 2
    .venv/bin/python -m scripts.research.mutation_odds --parent signum --splice
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import numpy as np

from optsearch.cli.programs import read_program
from optsearch.search.config import MutationConfig
from optsearch.search.mutation import Mutator
from scripts.research.outcome import SIGN_ANY, classify, sign_based


def sample(parent, n: int, seed: int, replace_weight: float = 1.0, depth: int = 1,
           splice: bool = False) -> tuple[collections.Counter, dict]:
    rng = np.random.default_rng(seed)
    mutator = Mutator(MutationConfig(replace_weight=replace_weight, splice=splice))
    classes, examples = collections.Counter(), {}
    for _ in range(n):
        child = parent
        for _ in range(depth):
            child = mutator.mutate(child, rng).child
        # the probe is cheap, the recogniser is not: only sign-based children need a class
        cls = classify(child).cls if sign_based(child) else "not sign-based"
        classes[cls] += 1
        examples.setdefault(cls, child)
    return classes, examples


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parent", default="adamw", help="program file or reference name")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replace-weight", type=float, default=MutationConfig.replace_weight,
                    help="weight of the 'replace' operator (0: the paper's three operators)")
    ap.add_argument("--depth", type=int, default=1,
                    help="successive mutations per descendant (no selection between them)")
    ap.add_argument("--splice", action="store_true",
                    help="splice inserts into new variables (mutation.splice = true)")
    args = ap.parse_args(argv)
    if args.depth < 1:
        ap.error("--depth must be >= 1")
    from optsearch.primitives.printer import format_program

    t0 = time.time()
    classes, examples = sample(read_program(args.parent), args.n, args.seed,
                               args.replace_weight, args.depth, args.splice)
    print(f"{args.n} descendants {args.depth} mutation(s) from {args.parent}, replace weight "
          f"{args.replace_weight:g} ({time.time() - t0:.0f} s):")
    for cls, count in classes.most_common():
        print(f"  {cls:16s} {count:6d}  {count / args.n:.2e}")
    sign = sum(c for k, c in classes.items() if k in SIGN_ANY)
    print(f"sign-based of any kind: {sign} ({sign / args.n:.2e} per proposal)")
    for cls, program in examples.items():
        if cls in SIGN_ANY:
            print(f"example {cls}:\n{format_program(program)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

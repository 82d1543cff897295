"""Progressive hurdles: screen a child on a cheap rung before paying for its full evaluation.

With `evaluation.hurdles` on, every child is first trained on the rung (evaluator.rungs: each
task at `rung_fraction` of its steps, all seeds, the usual divergence checks). It goes on to
the full evaluation only if its rung score reaches the hurdle: the `hurdle_quantile` of the
rung scores of the members of its island's population. A child that does not is *stopped*:
it gets no fitness, and its rung result is stored apart (run store table `rungs`), so nothing
can take it for a fitness.

A stopped child never joins the population: the population ages by one member per child
that gets a fitness (evaluated in full, or a duplicate of one), and a stop changes nothing in
the island -- not the members, the hurdle, or the plateau count that triggers a restart
(counted in full evaluations, as without hurdles; counted in screened programs, a measured
search restarted 3 times in 6 minutes against once without hurdles, each restart refilling
the population with copies of its best).

Why this rule: when stopped children joined the population ranked last (so that it aged one
member per screened child, as plain regularized evolution ages one per evaluated child), a
pass rate of ~6% on the default suite let the good programs age out ~15 times faster than
passing children replaced them, and the hurdle, a quantile of the few evaluated members
left, fell with them (measured: 5 of 64 members with a fitness, best 0.55, against 64 and
5.24 with hurdles off). Keeping stopped children out is the simplest rule that keeps the
population whole. It is more selective -- every member passed a hurdle -- but members still
die by age, not fitness, so a lucky one leaves after P more members have joined. Measured
(docs/HURDLES.md): every member finished, 50-52 distinct programs of 64, and at equal search
time the better program found than with hurdles off, in both seeds.

A duplicate (full-fitness cache hit or twin) joins with the rung score of the program it
repeats, so a population refilled by duplicates keeps a hurdle.

Why progressive hurdles (So et al. 2019, used with AutoML-Zero's regularized evolution) and
not successive halving (Jamieson & Talwalkar 2016; asynchronous: ASHA):
- The driver is steady-state and asynchronous: one child at a time, results in any order.
  A hurdle is a statistic of the population as it is when the rung result arrives, so no
  child ever waits for a cohort; synchronous halving needs batches, and ASHA's bar (the top
  1/eta of every rung result so far) is set mostly by the many poor children, not by the
  programs a child has to beat to matter.
- Regularized evolution only breeds from the population, through tournaments of T members.
  With T = 8, a child below the population's median wins a tournament it is drawn into
  with probability below 0.5^7 (< 1%), so it would almost never have become a parent: the
  population's own rung scores are the right bar, and they rise as the population does.
  Stopping a child changes the search only when that child would have won tournaments,
  which is what `scripts/bench/hurdles.py` measures ("cost of being wrong").
- Halving gains most when a rung can be continued into the next (checkpointed training);
  here a rung is a compressed schedule that cannot be resumed (evaluator.rungs), so there is
  one rung, and a passing child is trained again from scratch.

Initial programs skip the hurdle (the population needs them) but run the rung too, so every
member has a rung score; members that have none (a hit in the cross-run shared cache) or no
fitness do not count towards the hurdle; with no such member there is no hurdle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def population_hurdle(population: Iterable, quantile: float) -> float | None:
    """The `quantile` of the rung scores of the members that have a fitness (a score one of
    them reached), or None -- no hurdle -- when none has both."""
    scores = [ind.rung for ind in population
              if ind.rung is not None and math.isfinite(ind.fitness)]
    if not scores:
        return None
    return float(np.quantile(scores, quantile, method="lower"))


def clears(status: str, rung_score: float | None, hurdle: float | None) -> bool:
    """A finished rung reaches the hurdle; a failed rung (diverged, timed out, invalid)
    never does."""
    if status != "ok" or rung_score is None:
        return False
    return hurdle is None or rung_score >= hurdle

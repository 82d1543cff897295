"""The rung-choice benchmark's arithmetic: the driver's hurdle on the members' rung scores,
the top-quartile children it stops, and the screening gain from measured seconds."""

import math

import pytest

from scripts.bench.rung_choice import judge


def test_judge_counts_stopped_top_children_and_the_seconds_saved():
    """Rule: the hurdle is the members' rung-score quantile (members with a fitness and a
    finished rung); a top-quartile child whose rung misses it counts as wrong; a failed rung
    never passes; the gain is full seconds over rung seconds plus the passing children's
    full seconds."""
    member_fitness = [1.0, 2.0, 3.0, 4.0, -math.inf]
    member_rungs = [("ok", 1.0, 1), ("ok", 2.0, 1), ("ok", 3.0, 1), ("ok", 4.0, 1),
                    ("ok", 99.0, 1)]  # no fitness: not in the hurdle
    full = [("ok", 5.0, 10.0), ("ok", 4.0, 10.0), ("ok", 0.5, 10.0), ("diverged", 0.0, 1.0)]
    rungs = [("ok", 3.0, 1.0), ("ok", 1.0, 1.0), ("ok", 2.5, 1.0), ("diverged", 0.0, 0.5)]
    out = judge(member_fitness, member_rungs, full, rungs, 0.5)
    assert out["hurdle"] == 2.0                      # lower median of 1, 2, 3, 4
    assert out["top_quartile_fitness"] == pytest.approx(3.25)
    assert out["top_quartile_children"] == 2         # fitness 5.0 and 4.0
    assert out["top_quartile_stopped"] == 1          # the 4.0 child's rung (1.0) < 2.0
    assert out["pass_rate"] == pytest.approx(0.5)    # rungs 3.0 and 2.5 pass
    assert out["screening_gain"] == pytest.approx(31.0 / (3.5 + 20.0))

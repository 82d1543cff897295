"""The rung-choice benchmark's arithmetic: the driver's hurdle on the members' rung scores,
the top-quartile children it stops, and the screening gain from measured seconds."""

import math

import pytest

from scripts.bench.rung_choice import judge, repeat_check


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
    out = judge(member_fitness, full, [(member_rungs, rungs, 0.5)])
    assert out["hurdles"] == [2.0]                      # lower median of 1, 2, 3, 4
    assert out["top_quartile_fitness"] == pytest.approx(3.25)
    assert out["top_quartile_children"] == 2         # fitness 5.0 and 4.0
    assert out["top_quartile_stopped"] == 1          # the 4.0 child's rung (1.0) < 2.0
    assert out["pass_rate"] == pytest.approx(0.5)    # rungs 3.0 and 2.5 pass
    assert out["screening_gain"] == pytest.approx(31.0 / (3.5 + 20.0))


def test_a_cascade_pays_the_second_rung_only_for_children_past_the_first():
    """Rule: in a two-rung cascade a child is trained on the second rung only if it cleared
    the first hurdle, and in full only if it cleared both; the seconds count exactly that."""
    member_fitness = [1.0, 2.0, 3.0, 4.0]
    cheap_members = [("ok", s, 1) for s in (1.0, 2.0, 3.0, 4.0)]
    dear_members = [("ok", s, 1) for s in (10.0, 20.0, 30.0, 40.0)]
    full = [("ok", 5.0, 10.0), ("ok", 4.0, 10.0), ("ok", 0.5, 10.0)]
    cheap = [("ok", 3.0, 1.0), ("ok", 0.5, 1.0), ("ok", 2.5, 1.0)]   # hurdle 1.0 at q 0
    dear = [("ok", 35.0, 2.0), ("ok", 99.0, 2.0), ("ok", 5.0, 2.0)]  # hurdle 20.0 at q 0.5
    out = judge(member_fitness, full, [(cheap_members, cheap, 0.0), (dear_members, dear, 0.5)])
    assert out["hurdles"] == [1.0, 20.0]
    # child 1 (a top-quartile child) is stopped by the cheap rung whatever its second rung
    assert out["top_quartile_stopped"] == 1 and out["pass_rate"] == pytest.approx(1 / 3)
    assert out["screening_gain"] == pytest.approx(30.0 / (3.0 + 2 * 2.0 + 10.0))


def test_the_repeat_check_counts_top_children_that_fresh_seeds_place_below_the_quartile():
    """Rule: each quartile comes from the members' scores on the same seeds; a top-quartile
    child whose second training fails or falls below the second quartile counts as lost."""
    member_fitness = [1.0, 2.0, 3.0, 4.0]
    member_repeat = [("ok", s, 1) for s in (2.0, 4.0, 6.0, 8.0)]  # quartile 6.5
    full = [("ok", 5.0, 1), ("ok", 4.0, 1), ("ok", 3.5, 1), ("ok", 0.1, 1)]
    repeat = [("ok", 7.0, 1), ("ok", 6.0, 1), ("diverged", 0.0, 1), ("ok", 9.0, 1)]
    out = repeat_check(member_fitness, full, member_repeat, repeat)
    assert out["top_quartile_children"] == 3                 # 5.0, 4.0, 3.5 >= 3.25
    assert out["not_top_on_fresh_seeds"] == 2                # 6.0 < 6.5, and the failure


def test_reports_name_rungs_by_kind_and_refuse_to_reuse_another_population(tmp_path):
    """Rule: compressed rungs keep the bare fraction as their key (older reports are reused
    as they are); tail rungs say so; a report of another population is never reused."""
    from scripts.bench.rung_choice import reused, rung_label
    assert rung_label("compressed", 0.125) == "0.125"
    assert rung_label("tail", 0.0625) == "tail0.0625"
    assert rung_label("tail", 0.0625, 4.0) == "tail0.0625h4"
    assert reused(None, 64, 200) == {}
    report = tmp_path / "r.json"
    report.write_text('{"members": 64, "children": 100, "full": []}')
    assert reused(str(report), 64, 100)["members"] == 64
    with pytest.raises(SystemExit, match="another population"):
        reused(str(report), 64, 200)

"""Rules the calibration tool (scripts/research/rank_rules.py) keeps; the science it produces is in
docs/PROXIES.md, this only protects the mechanics on the tiny scale-0 tasks."""

import json

from scripts.research import ablate_centering, rank_rules


def test_every_variant_gets_a_grid_lr_and_a_fresh_seed_row(tmp_path, capsys):
    """Each ranked variant reports an lr from the grid and one fitness per fresh seed, the
    table is sorted best first, and the run is appended to --out (nothing measured is lost)."""
    out = tmp_path / "rank.jsonl"
    rc = rank_rules.main(["--tasks", "teacher_student@0", "--seeds", "2", "--only",
                          "adamw .9/.999", "signsgd", "--lr-min", "1e-2", "--lr-max", "1e-1",
                          "--workers", "1", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    record = json.loads(out.read_text().splitlines()[-1])
    grid = rank_rules.lr_grid(3, 1e-2, 1e-1)
    assert set(record["best"]) == {"adamw .9/.999", "signsgd"}
    assert all(lr in grid for lr, _, _ in record["best"].values())
    assert all(len(row["fitness"]) == 2 for row in record["fresh"].values())
    table = capsys.readouterr().out.splitlines()[1:3]
    fitness = [float(line.split("fitness")[1].split()[0]) for line in table]
    assert fitness == sorted(fitness, reverse=True)


def test_centring_ablation_refuses_a_student_it_cannot_read(capsys):
    """The per-tensor groups are told apart by shape, so another student width is refused
    with a one-line error rather than silently mislabelled."""
    assert ablate_centering.main(["--tasks", "teacher_student:hidden=[32]"]) == 2
    assert capsys.readouterr().err.startswith("error: ablate_centering:")


def test_centring_shifts_only_the_named_group():
    """centre:b1 adds the per-seed mean to the hidden biases' update and to nothing else."""
    import torch

    rule = ablate_centering.CentredAdamW(1.0, ("b1",))
    shapes = {"W1": (2, 32, 64), "b1": (2, 64), "Wout": (2, 64, 10), "bout": (2, 10)}
    for name, shape in shapes.items():
        w, g = torch.full(shape, 3.0), torch.ones(shape)
        plain, _ = ablate_centering.CentredAdamW(1.0, ())(w, g, (g * 0, g * 0), 1.0)
        update, _ = rule(w, g, (g * 0, g * 0), 1.0)
        assert ablate_centering.group(w) == name
        assert torch.equal(update, plain + 3.0 if name == "b1" else plain)

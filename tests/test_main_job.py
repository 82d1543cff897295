"""The README's main job end to end: search -> funnel -> simplify -> recognise -> export."""

from __future__ import annotations

import importlib.util

import pytest

from optsearch.cli import cmd_run as main_job
from optsearch.cli.errors import UserError

pytestmark = pytest.mark.integration  # the main job end to end


def test_main_job_ends_with_an_importable_exported_optimizer_and_the_summary(
        tmp_path, tiny_meta_suites, capsys):
    out = tmp_path / "run"
    code = main_job.main(["--backend", "serial", "--suite", "test", "--budget", "6",
                          "--minutes", "5", "--top-k", "2", "--out", str(out), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    for part in ("=== discovered program ===", "=== simplified ===", "recognised:",
                 "AdamW (reference)", "AdamW (lr x", "Lion (lr x", "verdict:",
                 "exported optimizer", str(out)):
        assert part in text
    spec = importlib.util.spec_from_file_location("exported", out / "optimizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)   # our own generated file, not user text
    assert any(isinstance(v, type) and hasattr(v, "step") for v in vars(module).values())
    from optsearch.cli.programs import read_run_winner
    from optsearch.primitives import format_program, parse
    for name in ("winner.py", "simplified.py"):   # program files other tools can take
        assert parse((out / name).read_text()).statements
    # the main job works on the run's winner, the one `optsearch simplify/export RUN` take
    assert format_program(read_run_winner(str(out))[0]) == \
        format_program(parse((out / "winner.py").read_text()))


def test_the_main_job_is_a_library_call_that_reports_through_its_callbacks(
        tmp_path, tiny_meta_suites, capsys):
    """The pipeline prints nothing itself: its lines go to `log`, the search goes through the
    caller's runner (where the CLI keeps its progress bar), and the result says what shipped."""
    from optsearch.primitives.reference import load_reference
    from optsearch.search import pipeline
    from optsearch.search.config import Config

    config = Config().with_overrides(backend="serial", suite="test", budget=3)
    lines, runs = [], []

    def runner(driver, deadline):
        runs.append(deadline)
        pipeline.run_to_deadline(driver, deadline)

    out = str(tmp_path / "run")
    result = pipeline.run_main_job(out, config, load_reference("adamw"), minutes=5,
                                   top_k=1, runner=runner, log=lines.append)
    assert capsys.readouterr().out == "" and len(runs) == 1
    assert lines[0].startswith(f"search: {out}") and "funnel selection:" in lines
    assert result.shipped in result.table and result.exported == str(tmp_path / "run" /
                                                                       "optimizer.py")
    assert result.winner == (tmp_path / "run" / "winner.py").read_text()


def test_from_run_exports_a_finished_search_and_rejects_a_non_run(tmp_path, tiny_meta_suites,
                                                                   capsys):
    # The rule: the post-search pipeline runs on any finished run directory without searching
    # again; a directory that holds no run is a one-line error with status 2.
    out = tmp_path / "run"
    argv = ["--backend", "serial", "--suite", "test", "--top-k", "1", "--quiet"]
    assert main_job.main(argv + ["--budget", "3", "--out", str(out)]) == 0
    (out / "optimizer.py").unlink()
    capsys.readouterr()
    assert main_job.main(argv + ["--from-run", str(out)]) == 0
    assert "using the finished run" in capsys.readouterr().out
    assert (out / "optimizer.py").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="not a run directory"):
        main_job.main(argv + ["--from-run", str(empty)])


def test_verdict_compares_with_the_best_lr_tuned_reference_beyond_noise():
    """The bar is the best *tuned* reference, never the untuned ones, and within 2 combined
    standard errors the programs are called level."""
    table = {"discovered (simplified)": (2.5, 0.1), "AdamW (reference)": (1.0, 0.0),
             "AdamW (lr x16, tuned)": (4.1, 0.07), "Lion (lr x32, tuned)": (2.1, 0.08)}
    assert "LOSES to the best lr-tuned reference, AdamW (lr x16, tuned)" in \
        main_job.verdict(table, "discovered (simplified)")
    table["discovered (simplified)"] = (4.2, 0.1)
    assert "is level with" in main_job.verdict(table, "discovered (simplified)")
    table["discovered (simplified)"] = (5.0, 0.1)
    assert "beats" in main_job.verdict(table, "discovered (simplified)")

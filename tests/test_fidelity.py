"""Meta-validation suite names (`S@10`, `S@100`), the evaluate CLI's bad-input contract, and
the rank correlation the fidelity benchmark reports."""

import json
import subprocess
import sys

import numpy as np
import pytest

from optsearch.cli.main import main
from optsearch.evaluator.lr_sweep import with_lr_factor
from optsearch.evaluator.suites import resolve_suite
from optsearch.primitives.printer import format_program
from optsearch.primitives.reference import load_reference, reference_text
from optsearch.search.distill.funnel import stage_suite
from optsearch.search.store import RunStore
from scripts.bench.fidelity import (
    population_sample,
    ranks,
    report,
    spearman,
    spearman_interval,
    write_panel,
)


def test_meta_suite_names_resolve_to_the_funnel_stages():
    """`S@10` is the funnel's stage suite: the same tasks, overrides and version."""
    meta = resolve_suite("default@10")
    assert list(meta.tasks) == ["noisy_quadratic@10", "teacher_student@10"]
    assert meta.name == "default@10"
    big = resolve_suite("bigbatch@100")
    assert list(big.tasks) == ["noisy_quadratic@100", "teacher_student@100,batch_size=512"]
    assert big.tasks["teacher_student@100,batch_size=512"].config.batch_size == 512
    assert resolve_suite("ts512@10").version == stage_suite("ts512", 10).version


@pytest.mark.parametrize("name, message", [
    ("default@7", "scale must be one of 10, 100"),
    ("nosuch@10", "unknown suite 'nosuch'"),
    ("default@", "expected NAME@SCALE"),
    ("default@1e1", "expected NAME@SCALE"),
])
def test_bad_meta_suite_names_are_key_errors(name, message):
    with pytest.raises(KeyError, match=message):
        resolve_suite(name)


@pytest.mark.parametrize("args", [
    ("--suite", "default@7"),
    ("--suite", "nosuch@10"),
    ("--lr-sweep", "0"),
    ("--lr-sweep", "3", "--seeds", "1"),
])
def test_evaluate_bad_input_is_one_line_and_status_2(args, capsys):
    """Bad user input: one `error:` line on stderr, exit status 2, nothing evaluated."""
    assert main(["evaluate", "lion", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1


def test_evaluate_bad_suite_from_a_fresh_process_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "optsearch.cli.main", "evaluate", "lion",
                           "--suite", "default@7"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_ranks_share_ties_and_spearman_matches_the_definition():
    assert list(ranks([3.0, 1.0, 3.0, 2.0])) == [2.5, 0.0, 2.5, 1.0]
    x = np.array([0.1, 0.5, 0.2, 0.9, 0.7])
    assert spearman(x, x ** 3) == pytest.approx(1.0)          # monotone: rho is 1
    assert spearman(x, -x) == pytest.approx(-1.0)
    # 1 - 6 sum d^2 / (n (n^2 - 1)) for untied data: ranks 0,2,1,4,3 vs 0,1,2,3,4
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(x, y) == pytest.approx(1 - 6 * 4 / (5 * 24))
    assert np.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def _small_run(tmp_path, texts=None) -> str:
    texts = texts or [reference_text(n) for n in ("adamw", "lion", "signum", "sgdm", "rmsprop")]
    store = RunStore.create(str(tmp_path / "run"), "")
    with store.transaction():
        for i, text in enumerate(texts, start=1):
            store.insert_candidate(id=i, island=0, epoch=0, parent_id=None, mutation="init",
                                   detail="", program=text,
                                   structural_hash=f"h{i}", fingerprint=f"f{i}", status="ok",
                                   source="evaluated", aggregate=float(i), proposed_at=0.0)
        store.insert_candidate(id=6, island=0, epoch=0, parent_id=None, mutation="init",
                               detail="", program=reference_text("lion"), structural_hash="h2",
                               fingerprint="f2", status="ok", source="evaluated",
                               aggregate=9.0, proposed_at=0.0)  # a twin of lion, scored higher
    store.close()
    return str(tmp_path / "run")


def test_the_panel_samples_distinct_finished_programs_of_a_run_evenly_in_rank(tmp_path):
    """`panel --run` reads a real run store: one program per structural hash, best first,
    evenly spaced in rank (the first and the last always in)."""
    sample = population_sample(_small_run(tmp_path), 3)
    assert [label for label, _ in sample] == ["search_c6", "search_c4", "search_c1"]


def test_extending_the_panel_appends_new_programs_and_never_renames_scored_ones(tmp_path):
    """`panel --extend` keeps every existing file (its scores stay valid), numbers the run's
    sample after them, and skips a program whose text the panel already holds."""
    out = tmp_path / "bench"
    first = write_panel(out, None, 0)
    before = {p.name: p.read_text() for p in first}
    # the run holds AdamW at x3 and x5 (new) and the panel's own AdamW and Lion (skipped)
    new = [format_program(with_lr_factor(load_reference("adamw"), f)) for f in (3.0, 5.0)]
    run = _small_run(tmp_path, [new[0], reference_text("lion"), new[1], before[first[0].name]])
    added = write_panel(out, run, 5, extend=True)
    assert {p.name: p.read_text() for p in first} == before
    assert [p.name[:2] for p in added] == [f"{len(first)}", f"{len(first) + 1}"]
    assert sorted(p.read_text() for p in added) == sorted(new)


def _result(kind, suite, program, aggregate):
    return {"program": program, "kind": kind, "suite": suite, "seeds": [0, 1], "lr_sweep": 1,
            "lr_factor": 1.0, "aggregate": aggregate, "status": "ok",
            "seed_aggregates": [aggregate, aggregate]}


def test_the_report_validates_each_suite_on_its_own_10x_and_keeps_a_share_per_suite(
        tmp_path, capsys):
    """Each suite's programs are paired with that suite's meta-validation (never another
    suite's), and --top-share keeps the same upper share of each suite whatever its scale."""
    rows = []
    for i in range(8):
        p = f"p{i}"
        rows += [_result("search", "a", p, 1.0 + i), _result("meta", "a", p, 1.0 + i),
                 _result("search", "b", p, 100.0 + i), _result("meta", "b", p, 10.0 - i)]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report(tmp_path, top=1.5, top_share=0.5)
    lines = capsys.readouterr().out.splitlines()
    by_suite = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[2:4]}
    assert by_suite["a"][5] == "1.00" and by_suite["b"][5] == "-1.00"   # rho (all)
    assert by_suite["a"][7] == "4" and by_suite["b"][7] == "4"          # n top: half of each
    assert "| p7 | 8.000 | 107.000 | 8.000 | 3.000 |" in lines       # each suite's own 10x


def test_the_rho_interval_is_tight_for_a_monotone_panel_and_covers_zero_for_noise():
    """The bootstrap interval is what decides a rho goal: a perfectly ordered panel gives
    (1, 1); a panel of unrelated scores gives an interval that straddles zero."""
    x = np.arange(20.0)
    assert spearman_interval(x, 2 * x + 1) == pytest.approx((1.0, 1.0))
    noise = np.random.default_rng(3).normal(size=20)
    low, high = spearman_interval(x, noise)
    assert low < 0 < high

"""`optsearch search / resume / inspect stats` with the fake backend, incl. kill -9 and resume."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from support import candidate_rows, small_config_toml

from optsearch.cli.main import build_parser, main
from optsearch.search.config import Config, from_dict

ROOT = Path(__file__).resolve().parents[1]
STATS_KEYS = {"proposed", "invalid", "cache_hits", "evaluated", "failed", "best_fitness",
              "dead_fraction", "cache_hit_rate"}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(small_config_toml(budget=60, seed=11))
    return str(path)


def rows(run_dir, where="1"):
    return candidate_rows(run_dir, where)


def count_evaluated(run_dir):
    try:
        return len(rows(run_dir, "source = 'evaluated'"))
    except sqlite3.Error:
        return 0  # not created yet


def spawn_search(config_file, run_dir, delay=0.03):
    """The search as a user starts it in a terminal: with SIGINT's default action even when
    this test process ignores SIGINT (a background job of a non-interactive shell does, and
    a child inherits an ignored signal, so Ctrl-C would never reach it)."""
    cmd = [sys.executable, "-m", "optsearch.cli.main", "search", "--config", config_file, "--out",
           run_dir, "--quiet", "--fake-delay", str(delay)]
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # reset to default in the child
    try:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def wait_for(run_dir, evaluated, proc, timeout=60):
    deadline = time.time() + timeout
    while count_evaluated(run_dir) < evaluated:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "search made no progress"
        time.sleep(0.05)


def test_default_toml_documents_the_dataclass_defaults():
    with open(ROOT / "configs" / "default.toml", "rb") as fh:
        assert from_dict(tomllib.load(fh)) == Config()


def test_overrides_replace_the_named_keys_only_and_are_validated():
    """Command-line options and library callers change a config the same way: by key name,
    None meaning "not given", with the file's own checks; the original is left as it was."""
    from optsearch.search.config import ConfigError

    base = Config()
    config = base.with_overrides(budget=7, backend="serial", fake_delay_s=1, seed=None)
    assert (config.search.budget, config.evaluation.backend) == (7, "serial")
    assert config.evaluation.fake_delay_s == 1.0 and config.search.seed == base.search.seed
    assert base.search.budget == Config().search.budget
    for bad in ({"budget": -1}, {"population": 8}, {"budget": "many"}):
        with pytest.raises(ConfigError):
            base.with_overrides(**bad)


def test_search_then_inspect_stats(tmp_path, config_file, capsys):
    run_dir = str(tmp_path / "run")
    assert main(["search", "--config", config_file, "--out", run_dir, "--quiet",
                 "--budget", "25"]) == 0
    assert {"config.toml", "run.sqlite", "best.py"} <= set(os.listdir(run_dir))
    capsys.readouterr()
    assert main(["inspect", run_dir, "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert STATS_KEYS <= set(stats) and stats["evaluated"] == 25 and stats["best_fitness"] > 0
    assert main(["inspect", run_dir]) == 0
    assert "cache hit rate" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["search", "--config", "{bad}", "--out", "{run}"], "unknown key 'populaton_size'"),
    (["search", "--config", "{cfg}", "--out", "{existing}"], "already holds a run"),
    (["resume", "{run}"], "not a run directory"),
    (["inspect", "{run}", "stats"], "not a run directory"),
    # the evaluator's one backend factory refuses an unknown kind or suite before starting
    (["search", "--config", "{gpu}", "--out", "{run}"],
     "cannot start the gpu backend: unknown backend 'gpu'; known: serial, ray, fake"),
    (["search", "--config", "{cfg}", "--backend", "serial", "--suite", "nope", "--out", "{run}"],
     "cannot start the serial backend: unknown suite 'nope'"),
])
def test_user_errors_are_one_line_with_status_2(tmp_path, config_file, capsys, argv, message):
    bad = tmp_path / "bad.toml"
    bad.write_text("[search]\npopulaton_size = 3\n")
    gpu = tmp_path / "gpu.toml"
    gpu.write_text("[evaluation]\nbackend = \"gpu\"\n")
    existing = str(tmp_path / "existing")
    main(["search", "--config", config_file, "--out", existing, "--quiet", "--budget", "2"])
    capsys.readouterr()
    names = {"bad": str(bad), "gpu": str(gpu), "run": str(tmp_path / "new"), "cfg": config_file,
             "existing": existing}
    assert main([a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_fake_backend_is_hidden_from_help():
    help_text = build_parser()._subparsers._group_actions[0].choices["search"].format_help()
    assert "fake" not in help_text and "--budget" in help_text


@pytest.mark.integration
def test_kill_9_then_resume_loses_nothing_and_matches_an_uninterrupted_run(tmp_path,
                                                                          config_file):
    killed = str(tmp_path / "killed")
    proc = spawn_search(config_file, killed)
    wait_for(killed, 15, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = rows(killed, "source IS NOT NULL")
    assert 15 <= len(before) and count_evaluated(killed) < 60
    assert main(["resume", killed, "--quiet"]) == 0
    after = rows(killed)
    assert set(before) <= set(after)  # every finished candidate survived, unchanged
    full = str(tmp_path / "full")
    assert main(["search", "--config", config_file, "--out", full, "--quiet"]) == 0
    assert after == rows(full)
    assert Path(killed, "best.py").read_text() == Path(full, "best.py").read_text()


@pytest.mark.integration
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    """Rule: Ctrl-C ends a search with status 130 and the resume command, no traceback, and
    the resumed run goes on to its budget."""
    run_dir, config_file = str(tmp_path / "run"), tmp_path / "endless.toml"
    # A budget the search cannot reach before the signal, however long a loaded machine
    # starves this test process; the resume then sets the budget it runs to.
    config_file.write_text(small_config_toml(budget=10**6, seed=11))
    proc = spawn_search(str(config_file), run_dir, delay=0.2)
    wait_for(run_dir, 5, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and f"optsearch resume {run_dir}" in err
    assert "Traceback" not in err
    stopped_at = count_evaluated(run_dir)
    assert 5 <= stopped_at < 60
    assert main(["resume", run_dir, "--budget", "60", "--quiet"]) == 0
    assert count_evaluated(run_dir) == 60


def test_an_lr_swept_warm_start_evaluates_each_factor_and_breeds_from_the_best(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text("[search]\npopulation_size = 8\ntournament_size = 3\nbudget = 20\n"
                      "init_lr_factors = \"0.5,1,2\"\n\n[evaluation]\nbackend = \"fake\"\n")
    run_dir = str(tmp_path / "run")
    assert main(["search", "--config", str(config), "--out", run_dir, "--quiet"]) == 0
    table = rows(run_dir)
    inits = [r for r in table if r[4] == "init"]
    assert [("lr * 0.0005" in r[6], "lr * 0.001" in r[6], "lr * 0.002" in r[6])
            for r in inits] == [(True, False, False), (False, True, False), (False, False, True)]
    best_init = max(inits, key=lambda r: r[13])[0]
    first_child = next(r for r in table if r[4] != "init")
    assert first_child[3] == best_init  # selection started from the sweep's best

"""The README's main job end to end: search -> funnel -> simplify -> recognise -> export."""

from __future__ import annotations

import importlib.util

import proxy_tasks
from scripts import main_job


def test_main_job_ends_with_an_importable_exported_optimizer_and_the_summary(
        tmp_path, monkeypatch, capsys):
    # The real 10x suite costs minutes per program; the pipeline is the same on a tiny one.
    monkeypatch.setitem(proxy_tasks.SUITES, "test@10", [("digits_mlp", 0)])
    out = tmp_path / "run"
    code = main_job.main(["--backend", "serial", "--suite", "test", "--budget", "6",
                          "--minutes", "5", "--top-k", "2", "--out", str(out), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    for part in ("=== discovered program ===", "=== simplified ===", "recognised:",
                 "AdamW (reference)", "exported optimizer", str(out)):
        assert part in text
    spec = importlib.util.spec_from_file_location("exported", out / "optimizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)   # our own generated file, not user text
    assert any(isinstance(v, type) and hasattr(v, "step") for v in vars(module).values())

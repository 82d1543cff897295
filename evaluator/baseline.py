"""The AdamW baseline every score is normalised against, computed once per suite version.

The baseline is the reference program `adamw` (primitives/programs/adamw.py) run through the
very same path as any candidate (compile with batch_dims=1, task.run), so AdamW scores
exactly 1.0. It is stored per (suite version, seeds, device) -- float results differ across
devices -- as one JSON file under the cache directory ($OPTSEARCH_CACHE_DIR, default
~/.cache/optsearch), written atomically so concurrent processes can share it, and memoised
in-process. A baseline that fails is a broken suite, so it raises instead of returning.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from optsearch.evaluator.suites import evaluation_version, resolve_suite
from optsearch.evaluator.train import compile_checked, run_tasks
from optsearch.primitives.reference import load_reference

BASELINE_PROGRAM = "adamw"
_MEMO: dict = {}


def default_cache_dir() -> Path:
    return Path(os.environ.get("OPTSEARCH_CACHE_DIR") or Path.home() / ".cache" / "optsearch")


def compute_baseline(suite, seeds, device="cpu", data=None) -> dict:
    """Task key -> AdamW's metric per seed, by training (no time limit: it must finish)."""
    suite = resolve_suite(suite)
    rule = compile_checked(load_reference(BASELINE_PROGRAM))
    results = run_tasks(rule, suite, seeds, device, data, time_limit_s=None)
    for key, result in results.items():
        if result.status != "ok":
            raise RuntimeError(f"AdamW baseline {result.status} on task {key}: "
                               f"the suite {suite.name!r} is miscalibrated")
    return {key: [float(m) for m in r.metric] for key, r in results.items()}


def _path(cache_dir: Path, suite, seeds, device) -> Path:
    version = evaluation_version(suite, seeds) + f"/device={device}"
    digest = hashlib.sha256(version.encode()).hexdigest()[:20]
    return cache_dir / "baselines" / f"{suite.name}-{digest}.json"


def baseline_metrics(suite, seeds, device="cpu", data=None, cache_dir=None,
                     compute=None) -> dict:
    """Cached AdamW baseline. `compute()` overrides how a missing one is produced (the Ray
    backend computes it in a worker, on the workers' device)."""
    suite, seeds = resolve_suite(suite), tuple(int(s) for s in seeds)
    path = _path(Path(cache_dir) if cache_dir else default_cache_dir(), suite, seeds, device)
    if path in _MEMO:
        return _MEMO[path]
    try:
        metrics = json.loads(path.read_text())["metrics"]
    except (OSError, ValueError, KeyError):
        metrics = compute() if compute else compute_baseline(suite, seeds, device, data)
        _write_atomic(path, {"suite": suite.name, "version": suite.version, "seeds": seeds,
                             "device": device, "program": BASELINE_PROGRAM,
                             "metrics": metrics})
    _MEMO[path] = metrics
    return metrics


def _write_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=1)
    os.replace(tmp, path)   # readers see the old file or the new one, never half of one

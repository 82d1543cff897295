"""A search on an existing Ray cluster (`--address`) survives losing a node.

Two Ray nodes on this machine (`ray.cluster_utils.Cluster`, one CPU each, one evaluation
worker on each); the search runs as a user runs it, in its own process, and the worker node
is killed mid-search. The rules: the budget still completes, every evaluation is stored
exactly once, a resume finds nothing in flight, Ray's own log lines stay off the terminal
(they are in the run directory's ray.log), and the workers run the code shipped to them
through Ray's runtime environment, not the checkout. With a CUDA device, workers with
fractional GPUs evaluate on it (skipped without one; scripts/gpu_check.sh runs it).
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest
import torch

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster

from optsearch.evaluator import evaluate, make_backend
from optsearch.primitives.reference import reference_text
from optsearch.search.driver import resume_run

pytestmark = pytest.mark.integration

BUDGET = 10
CONFIG = f"""
[search]
population_size = 4
tournament_size = 2
budget = {BUDGET}
seed = 3
init_lr_factors = "1,4"
restart_plateau = 0

[evaluation]
backend = "ray"
suite = "digits"
seeds = 1
"""
RAY_LINE_MARKS = ("(raylet)", "core_worker", "INFO worker.py", "WARNING", "Token authentication")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_workers_with_fractional_gpus_evaluate_on_their_cuda_device(tmp_path, monkeypatch):
    """--gpus-per-worker 0.5: two workers share one GPU, each evaluating on the CUDA device
    Ray gave it, with the fitness an in-process CUDA evaluation gives."""
    monkeypatch.setenv("OPTSEARCH_CACHE_DIR", str(tmp_path))
    texts = [reference_text(name) for name in ("adamw", "lion", "signum", "sgdm")]
    with make_backend("ray", workers=2, suite="test", seeds=(0, 1),
                      gpus_per_worker=0.5) as backend:
        infos = backend.worker_info()
        for job_id, text in enumerate(texts):
            backend.submit(job_id, text)
        results, deadline = [], time.time() + 300
        while len(results) < len(texts) and time.time() < deadline:
            results += backend.poll(timeout_s=1.0)
    assert all(info["device"] == "cuda" and info["cuda_device"] for info in infos), infos
    assert len(infos[0]["gpu_ids"]) == 1 and infos[1]["gpu_ids"] == infos[0]["gpu_ids"]
    assert sorted(job_id for job_id, _, _ in results) == list(range(len(texts)))
    for job_id, fitness, _ in results:
        direct = evaluate(texts[job_id], "test", (0, 1), device="cuda")
        assert fitness.status == direct.status == "ok"
        assert fitness.aggregate == pytest.approx(direct.aggregate, rel=1e-4)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    os.environ["OPTSEARCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    # Ray's files in a directory of our own (short: Ray's socket paths must stay short), so
    # that no other process on this machine finds this cluster through /tmp/ray.
    ray_tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
    os.environ["RAY_TMPDIR"] = ray_tmp
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1,
                                                            "include_dashboard": False})
    worker_node = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster, worker_node
    cluster.shutdown()
    for name in ("OPTSEARCH_CACHE_DIR", "RAY_TMPDIR"):
        os.environ.pop(name, None)
    shutil.rmtree(ray_tmp, ignore_errors=True)


def evaluated(db: str) -> int:
    """Full evaluations so far; 0 before the run store exists -- the file appears a moment
    before its tables, so a poll can find it empty."""
    if not os.path.exists(db):
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM candidates WHERE source = 'evaluated'"
                                ).fetchone()[0]
        except sqlite3.OperationalError:  # no such table yet
            return 0


def test_a_search_through_address_completes_when_a_node_dies(cluster, tmp_path):
    cluster, worker_node = cluster
    config, run = tmp_path / "small.toml", tmp_path / "run"
    config.write_text(CONFIG)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    search = subprocess.Popen(
        [sys.executable, "-m", "optsearch.cli.main", "search", "--config", str(config),
         "--address", cluster.address, "--workers", "2", "--out", str(run), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.time() + 240
    while evaluated(run / "run.sqlite") < 2 and time.time() < deadline:
        assert search.poll() is None, search.communicate()
        time.sleep(0.5)
    assert evaluated(run / "run.sqlite") < BUDGET, "the node must die mid-search"
    cluster.remove_node(worker_node, allow_graceful=False)     # a crash, not a drain
    out, err = search.communicate(timeout=300)
    assert search.returncode == 0, err

    with sqlite3.connect(run / "run.sqlite") as conn:
        rows = conn.execute("SELECT id, status, source, worker FROM candidates").fetchall()
    evaluations = [r for r in rows if r[2] == "evaluated"]
    assert len(evaluations) == BUDGET, "the whole budget, though a node died"
    assert len({r[0] for r in rows}) == len(rows), "each candidate stored once"
    lost = [r for r in evaluations if r[1] in ("error", "timeout")]   # not the program's fault
    assert not lost, f"evaluations lost to the dead node: {lost}"
    driver = resume_run(str(run), backend_factory=lambda ev: make_backend("fake"))
    try:
        assert (len(driver.pending), driver.counters["evaluated"]) == (0, BUDGET)
    finally:
        driver.close()

    terminal = out + err
    assert not [mark for mark in RAY_LINE_MARKS if mark in terminal], terminal
    log = (run / "ray.log").read_text()
    assert "Connected to Ray cluster" in log


def test_workers_on_a_cluster_import_the_code_shipped_to_them(cluster):
    """Nodes need the dependencies, not a checkout: the project's packages reach the workers
    through Ray's runtime environment (py_modules), and that copy is what they import."""
    cluster, _ = cluster
    with make_backend("ray", workers=1, address=cluster.address, suite="test",
                      seeds=(0,)) as backend:
        info, = backend.worker_info()
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert not info["code"].startswith(checkout), info
    assert "runtime_resources" in info["code"], info
    assert info["device"] == "cpu" and info["gpu_ids"] == []

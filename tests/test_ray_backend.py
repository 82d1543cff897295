"""The Ray backend: same fitness as serial, survives a killed worker, refuses foreign data,
turns overruns into "timeout". One local Ray instance (2 CPUs) is shared by the module."""

import gc
import os
import signal
import time

import pytest

ray = pytest.importorskip("ray")

from optsearch.evaluator import Suite, evaluate, make_backend
from optsearch.evaluator import baseline as baseline_mod
from optsearch.primitives.reference import reference_text

pytestmark = pytest.mark.integration  # starts a local Ray instance

SEEDS = (0, 1)
DIVERGING = "def train(w, g, lr):\n    u = g * 1000000.0\n    return u\n"
NO_GRADIENT = "def train(w, g, lr):\n    u = w * 2.0\n    return u\n"
# The tiny digits task made long enough (~4 s per evaluation on an idle core; at 1200 steps,
# an idle machine finished it before the kill) to be hit mid-run.
SLOW_STEPS = 20000


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    os.environ["OPTSEARCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    baseline_mod._MEMO.clear()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    os.environ.pop("OPTSEARCH_CACHE_DIR", None)


@pytest.fixture(scope="module")
def slow_backend(ray_instance):
    suite = Suite.custom("slow", [("digits_mlp", 0, {"steps": SLOW_STEPS})])
    backend = make_backend("ray", workers=2, suite=suite, seeds=SEEDS, time_limit_s=120.0)
    yield backend
    backend.close()


def drain(backend, expected: int, limit_s: float = 60.0) -> list:
    results, deadline = [], time.time() + limit_s
    while len(results) < expected and time.time() < deadline:
        results += backend.poll(timeout_s=1.0)
    return results


def test_ray_gives_the_serial_fitness_for_every_program(ray_instance):
    """Workers are interchangeable with in-process evaluation: identical metrics per seed."""
    texts = [reference_text(n) for n in ("adamw", "lion", "sgdm", "signum")]
    texts += [DIVERGING, NO_GRADIENT]
    with make_backend("ray", workers=2, suite="test", seeds=SEEDS) as backend:
        assert backend.capacity == 2
        backend.worker_pids()   # both started: a job goes only to a worker that is up
        for job_id, text in enumerate(texts):   # more jobs than capacity: queued in the driver
            backend.submit(job_id, text)
        results = drain(backend, len(texts))
        assert backend.pending == 0
    assert sorted(job for job, _, _ in results) == list(range(len(texts)))   # each exactly once
    assert {worker.split(":")[0] for _, _, worker in results} == {"ray0", "ray1"}
    for job_id, fitness, _ in results:
        serial = evaluate(texts[job_id], "test", SEEDS)
        assert (fitness.status, fitness.aggregate) == (serial.status, serial.aggregate)
        assert {k: t.per_seed for k, t in fitness.tasks.items()} == \
               {k: t.per_seed for k, t in serial.tasks.items()}
    assert results[[j for j, _, _ in results].index(0)][1].aggregate == 1.0   # AdamW


# (The next two tests come before those using slow_backend: its two workers hold the
# instance's 2 CPUs until the module ends, and a backend made after it could not start.)
def test_a_restarted_worker_needs_nothing_from_the_object_store(ray_instance, capfd):
    """An actor restart must never fail for lost constructor arguments: workers build the
    task data themselves, so Ray has no object-store argument to warn about, and a worker
    killed long after start-up (every temporary reference gone) restarts and evaluates."""
    with make_backend("ray", workers=1, suite="test", seeds=SEEDS) as backend:
        pid, = backend.worker_pids()
        gc.collect()
        os.kill(pid, signal.SIGKILL)
        backend.submit(0, reference_text("adamw"))
        (job_id, fitness, worker), = drain(backend, 1, limit_s=300.0)
    assert (job_id, fitness.status, fitness.aggregate) == (0, "ok", 1.0)
    assert not worker.endswith(f":{pid}")
    assert "constructor arguments in the object store" not in capfd.readouterr().err


def test_a_worker_with_different_data_refuses_and_the_job_fails_instead_of_waiting(
        ray_instance):
    """A node whose libraries build other task data must not score programs on it; when no
    worker can start, the waiting jobs come back as errors (the search does not hang)."""
    with make_backend("ray", workers=1, suite="test", seeds=SEEDS) as backend:
        backend._data_hashes = dict.fromkeys(backend._data_hashes, "0" * 16)
        backend._replace_actor(0)
        backend.submit(0, reference_text("adamw"))
        (job_id, fitness, _), = drain(backend, 1, limit_s=120.0)
    assert (job_id, fitness.status) == (0, "error")
    assert "differs from the driver's" in fitness.message


def test_a_worker_killed_mid_evaluation_loses_nothing(slow_backend):
    """Evaluation is idempotent: the lost job is evaluated again (by whichever worker is free
    first) and Ray restarts the dead actor, which then takes work again."""
    pids = slow_backend.worker_pids()
    slow_backend.submit(0, reference_text("lion"))
    slow_backend.submit(1, reference_text("sgdm"))
    time.sleep(1.5)                                   # both are now training
    os.kill(pids[0], signal.SIGKILL)
    results = {job: (fitness, worker)
               for job, fitness, worker in drain(slow_backend, 2, limit_s=300.0)}
    assert set(results) == {0, 1}
    assert all(fitness.status == "ok" for fitness, _ in results.values())
    assert not any(worker.endswith(f":{pids[0]}") for _, worker in results.values())
    lion = evaluate(reference_text("lion"), slow_backend.suite, SEEDS)
    assert results[0][0].aggregate == lion.aggregate
    restarted = slow_backend.worker_pids()[0]
    assert restarted != pids[0]                       # the same slot, a new process


def test_an_overrunning_evaluation_is_killed_and_reported_as_timeout(slow_backend):
    slow_backend.hard_timeout_s = 0.5
    try:
        slow_backend.submit(7, reference_text("lion"))
        (job_id, fitness, _), = drain(slow_backend, 1)
    finally:
        slow_backend.hard_timeout_s = None
    assert (job_id, fitness.status, fitness.aggregate) == (7, "timeout", 0.0)
    # The killed worker was replaced: the backend still evaluates at full capacity.
    slow_backend.submit(8, reference_text("adamw"))
    slow_backend.submit(9, reference_text("adamw"))
    assert {f.status for _, f, _ in drain(slow_backend, 2)} == {"ok"}

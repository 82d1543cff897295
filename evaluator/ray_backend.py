"""RayBackend: long-lived evaluation actors, one per CPU core (the only module importing ray).

Why this shape:
- Actors, not tasks: a worker imports torch and gets the suite's data once, then evaluates
  programs for the whole run; a task per program would pay that start-up every time.
- Data goes into the object store once (`ray.put`) and every actor (and every restart of
  one) receives the same reference; the actor copies it once into writable arrays, so a task
  that normalises data in place cannot corrupt the shared store copy.
- One evaluation in flight per actor: `capacity` equals the number of actors, and the time
  an evaluation has been running is simply the time since it was dispatched, which makes
  the hard timeout exact. Jobs submitted beyond capacity wait in the driver.
- Evaluation is idempotent, so a worker that dies (OOM, segfault, a killed process) is
  restarted by Ray (`max_restarts`) and its evaluation retried (`max_task_retries`).
- Timeouts: the task checks its time limit between steps and reports "timeout" itself. If a
  worker overruns the hard deadline anyway (a single step that never ends), the driver
  reports "timeout", cancels the call and kills the actor for good (`ray.cancel` cannot
  interrupt a running method of a synchronous actor), and starts a fresh one in its place.
  Killing without restart is what stops Ray from retrying the overrunning call.
- Ray or system errors become Fitness(status="error"): nothing raises out of `poll`.
"""

from __future__ import annotations

import collections
import os
import socket
import time

import numpy as np
import ray

from optsearch.evaluator.backends import Backend
from optsearch.evaluator.baseline import baseline_metrics, compute_baseline
from optsearch.evaluator.evaluate import DEFAULT_SEEDS, DEFAULT_TIME_LIMIT_S, evaluate
from optsearch.evaluator.fitness import Fitness
from optsearch.evaluator.rungs import rung_suite, rung_time_limit
from optsearch.evaluator.suites import resolve_suite

MAX_TASK_RETRIES = 2      # attempts after a worker death; a program that kills every worker fails
KILL_GRACE_S = 30.0       # beyond the cooperative time limit before the driver kills a worker


@ray.remote
class EvalWorker:
    def __init__(self, index: int, suite, seeds, data: dict, device: str, time_limit_s,
                 rung=None, lr_sweep: int = 1):
        import torch
        torch.set_num_threads(1)      # one actor per core: intra-op threads would oversubscribe
        self.suite, self.seeds, self.device = suite, tuple(seeds), device
        self.lr_sweep = lr_sweep
        # rung: None or (rung suite, its time limit); its tasks use the same data
        self.fidelity = {False: (suite, time_limit_s)} | ({True: rung} if rung else {})
        # `data` arrives from the object store as read-only views; copy once to own them.
        self.data = {key: {name: np.array(arr) for name, arr in task_data.items()}
                     for key, task_data in data.items()}
        self.name = f"ray{index}:{socket.gethostname()}:{os.getpid()}"

    def pid(self) -> int:
        return os.getpid()

    def baseline(self, rung: bool = False) -> dict:
        return compute_baseline(self.fidelity[rung][0], self.seeds, self.device, self.data)

    def evaluate(self, program_text: str, baseline: dict, rung: bool = False):
        suite, time_limit_s = self.fidelity[rung]
        fitness = evaluate(program_text, suite, self.seeds, self.device, self.data,
                           time_limit_s, baseline, self.lr_sweep)
        return fitness, self.name, time.time()


class RayBackend(Backend):
    """Options: device ("cpu"/"cuda"; default cuda when the cluster has GPUs), cache_dir for
    the baseline, hard_timeout_s (default time_limit_s + KILL_GRACE_S), max_task_retries,
    niceness (of the workers of a Ray instance this backend starts; None keeps Ray's default
    of 15, which makes the search yield the CPU to everything else on a shared machine),
    rung_fraction (also serve rung jobs: evaluator.rungs), lr_sweep (step sizes per
    evaluation: evaluator.lr_sweep)."""

    def __init__(self, workers=None, address=None, suite="default", seeds=DEFAULT_SEEDS,
                 time_limit_s=DEFAULT_TIME_LIMIT_S, device=None, cache_dir=None,
                 hard_timeout_s=None, max_task_retries=MAX_TASK_RETRIES, niceness=None,
                 rung_fraction=None, lr_sweep=1):
        self._owns_ray = _init_ray(address, workers, niceness)
        resources = ray.cluster_resources()
        self.workers = int(workers or resources.get("CPU", os.cpu_count() or 1))
        gpus = resources.get("GPU", 0.0)
        self.device = device or ("cuda" if gpus > 0 else "cpu")
        self.suite, self.seeds = resolve_suite(suite), tuple(int(s) for s in seeds)
        self.time_limit_s, self.lr_sweep = time_limit_s, lr_sweep
        self._rung = None
        if rung_fraction is not None:
            self.rung_suite = rung_suite(self.suite, rung_fraction)
            self._rung = (self.rung_suite, rung_time_limit(time_limit_s, rung_fraction))
        self.hard_timeout_s = hard_timeout_s if hard_timeout_s is not None else (
            None if time_limit_s is None else time_limit_s + KILL_GRACE_S)
        self._options = {"num_cpus": 1, "num_gpus": gpus / self.workers if gpus else 0,
                         "max_restarts": -1, "max_task_retries": max_task_retries}
        # Put once; every actor and every restart of one gets this reference. The driver holds
        # it for the backend's lifetime, which is what Ray's warning about restartable actors
        # with object-store constructor arguments asks for.
        self._data_ref = ray.put(self.suite.load_data())
        self._actors = [self._new_actor(i) for i in range(self.workers)]
        self.baseline = baseline_metrics(
            self.suite, self.seeds, self.device, cache_dir=cache_dir,
            compute=lambda: ray.get(self._actors[0].baseline.remote()))
        self._baselines = {False: self.baseline}
        if self._rung is not None:
            self._baselines[True] = baseline_metrics(
                self.rung_suite, self.seeds, self.device, cache_dir=cache_dir,
                compute=lambda: ray.get(self._actors[0].baseline.remote(True)))
        self._queue: collections.deque = collections.deque()     # (job_id, text, rung) not sent
        self._inflight: dict = {}      # ref -> (job_id, actor index, dispatch time)
        self._idle = list(range(self.workers))

    @property
    def capacity(self) -> int:
        return self.workers

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._inflight)

    def _new_actor(self, index: int):
        return EvalWorker.options(**self._options).remote(
            index, self.suite, self.seeds, self._data_ref, self.device, self.time_limit_s,
            self._rung, self.lr_sweep)

    def worker_pids(self) -> list[int]:
        """Process id of every actor (waits for them to start)."""
        return ray.get([a.pid.remote() for a in self._actors])

    def submit(self, job_id: int, program_text: str, rung: bool = False) -> None:
        if rung not in self._baselines:
            raise ValueError("this backend was made without a rung_fraction")
        self._queue.append((job_id, program_text, rung))
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            job_id, text, rung = self._queue.popleft()
            index = self._idle.pop(0)
            ref = self._actors[index].evaluate.remote(text, self._baselines[rung], rung)
            self._inflight[ref] = (job_id, index, time.time())

    def poll(self, timeout_s: float | None = None) -> list:
        """Finished jobs, oldest finish first; waits up to timeout_s for at least one."""
        deadline = None if timeout_s is None else time.time() + timeout_s
        while True:
            done = self._collect_ready() + self._expire_overdue()
            self._dispatch()
            if done or not self._inflight:
                done.sort(key=lambda item: item[0])
                return [result for _, result in done]
            wait_s = self._next_wait(deadline)
            if wait_s is not None and wait_s <= 0:
                return []
            ray.wait(list(self._inflight), num_returns=1, timeout=wait_s)

    def _next_wait(self, deadline):
        """Seconds to block in ray.wait: until the poll deadline or the next hard timeout."""
        limits = [] if deadline is None else [deadline - time.time()]
        if self.hard_timeout_s is not None:
            oldest = min(started for _, _, started in self._inflight.values())
            limits.append(oldest + self.hard_timeout_s - time.time() + 0.01)
        return max(0.0, min(limits)) if limits else None

    def _collect_ready(self) -> list:
        refs = list(self._inflight)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        done = []
        for ref in ready:
            job_id, index, _ = self._inflight.pop(ref)
            try:
                fitness, worker, finished = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - worker died after all retries, etc.
                fitness = Fitness.failure("error", f"{type(exc).__name__}: {exc}", self.seeds,
                                          suite=self.suite.name,
                                          suite_version=self.suite.version)
                worker, finished = f"ray{index}", time.time()
                self._replace_actor(index)
            self._idle.append(index)
            done.append((finished, (job_id, fitness, worker)))
        return done

    def _expire_overdue(self) -> list:
        if self.hard_timeout_s is None:
            return []
        now, done = time.time(), []
        for ref, (job_id, index, started) in list(self._inflight.items()):
            if now - started < self.hard_timeout_s:
                continue
            del self._inflight[ref]
            ray.cancel(ref)                 # drops it if it is still queued or being retried
            self._replace_actor(index)      # a running call can only be stopped by a kill
            self._idle.append(index)
            fitness = Fitness.failure("timeout", f"killed after {now - started:.1f} s",
                                      self.seeds, now - started, self.suite.name,
                                      self.suite.version)
            done.append((now, (job_id, fitness, f"ray{index}")))
        return done

    def _replace_actor(self, index: int) -> None:
        ray.kill(self._actors[index], no_restart=True)
        self._actors[index] = self._new_actor(index)

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors, self._inflight, self._queue = [], {}, collections.deque()
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False


def _init_ray(address, workers, niceness=None) -> bool:
    """Start a local Ray (or join `address`) unless one is running; True if we started it."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        if niceness is not None:   # read by the raylet this init starts, when it forks workers
            os.environ["RAY_worker_niceness"] = str(int(niceness))
        ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False,
                 log_to_driver=False)
    return True

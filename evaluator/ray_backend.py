"""RayBackend: long-lived evaluation actors, one per CPU core (the only module importing ray).

Why this shape:
- Actors, not tasks: a worker imports torch and builds the suite's data once, then evaluates
  programs for the whole run; a task per program would pay that start-up every time.
- Each actor builds the data itself from the suite's code (deterministic, tens of ms) and
  checks it against the driver's data hashes. Nothing the actor needs lives in the object
  store, so a restarted actor can never find its constructor arguments lost, and a node whose
  libraries make different data (char_lm reads the Python stdlib) refuses to evaluate.
- On a cluster (`address`), the project's code reaches the other nodes through Ray's runtime
  environment (`py_modules`): nodes need the Python dependencies only, not a checkout.
- One evaluation in flight per actor: the time an evaluation has been running is the time
  since it was dispatched, which makes the hard timeout exact. Jobs beyond the actors that
  are up wait in the driver.
- Evaluation is idempotent, so a lost worker (OOM, segfault, a killed process, a node that
  left the cluster) costs nothing: Ray restarts the actor (`max_restarts`), and the driver
  re-queues the job for whichever actor is free first (at most `max_task_retries` times). Ray
  does not retry the call itself: a call retried on an actor that cannot be placed again
  (its node gone) would wait forever. A restarted or new actor gets work again only once it
  answers a probe, so a job is never dispatched to an actor that is not running.
- Timeouts: the task checks its time limit between steps and reports "timeout" itself. If a
  worker overruns the hard deadline anyway (a single step that never ends), the driver
  reports "timeout" and kills the actor for good (`ray.cancel` cannot interrupt a running
  method of a synchronous actor), and starts a fresh one in its place.
- Ray or system errors become Fitness(status="error"): nothing raises out of `poll`.
- Ray's own log lines go to the run directory's log, not the terminal, unless verbose
  (RayLogRouting, entered by the command line).
"""

from __future__ import annotations

import collections
import importlib
import logging
import os
import shutil
import socket
import tempfile
import time

import ray
import ray._private.worker as ray_worker
from ray.exceptions import RayError, RayTaskError

from optsearch.evaluator.backends import Backend
from optsearch.evaluator.baseline import baseline_metrics, compute_baseline
from optsearch.evaluator.evaluate import DEFAULT_SEEDS, DEFAULT_TIME_LIMIT_S, evaluate
from optsearch.evaluator.fitness import Fitness
from optsearch.evaluator.rungs import rung_suite, rung_time_limit
from optsearch.evaluator.suites import resolve_suite

MAX_TASK_RETRIES = 2      # re-dispatches after a lost worker; a program that kills every worker fails
KILL_GRACE_S = 30.0       # beyond the cooperative time limit before the driver kills a worker
MAX_ACTOR_FAILURES = 3    # actors in a row that fail to start before a worker slot is given up
SHIPPED_PACKAGES = ("primitives", "proxy_tasks", "evaluator")   # all a worker imports


class DataMismatch(RuntimeError):
    """A worker built different task data than the driver (different library versions)."""


@ray.remote
class EvalWorker:
    def __init__(self, index: int, suite, seeds, device: str, time_limit_s, data_hashes: dict,
                 rung=None, lr_sweep: int = 1):
        import torch
        torch.set_num_threads(1)      # one actor per core: intra-op threads would oversubscribe
        self.suite, self.seeds, self.device = suite, tuple(seeds), device
        self.lr_sweep = lr_sweep
        # rung: None or (rung suite, its time limit); its tasks use the same data
        self.fidelity = {False: (suite, time_limit_s)} | ({True: rung} if rung else {})
        self.data = suite.load_data()
        self.name = f"ray{index}:{socket.gethostname()}:{os.getpid()}"
        for key, task in suite.tasks.items():
            if task.data_hash(self.data[key]) != data_hashes[key]:
                raise DataMismatch(f"{self.name}: the data of task {key} differs from the "
                                   f"driver's; install the same dependencies on every node")

    @ray.method(max_task_retries=-1)   # the probe: waits through restarts, fails if dead for good
    def info(self) -> dict:
        """Where this worker runs and what it runs with (the driver's probe, tests,
        scripts/gpu_check.sh)."""
        import torch

        from optsearch import evaluator
        cuda = self.device.startswith("cuda") and torch.cuda.is_available()
        return {"pid": os.getpid(), "name": self.name, "device": self.device,
                "node_id": ray.get_runtime_context().get_node_id(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "cuda_device": torch.cuda.get_device_name() if cuda else None,
                "code": os.path.dirname(evaluator.__file__)}

    def baseline(self, rung: bool = False) -> dict:
        return compute_baseline(self.fidelity[rung][0], self.seeds, self.device, self.data)

    def evaluate(self, program_text: str, baseline: dict, rung: bool = False):
        suite, time_limit_s = self.fidelity[rung]
        fitness = evaluate(program_text, suite, self.seeds, self.device, self.data,
                           time_limit_s, baseline, self.lr_sweep)
        return fitness, self.name, time.time()


class RayBackend(Backend):
    """Options: device ("cpu"/"cuda"; default cuda when gpus_per_worker > 0), gpus_per_worker
    (a fraction shares a GPU between actors; Ray sets each actor's CUDA_VISIBLE_DEVICES),
    cache_dir for the baseline, hard_timeout_s (default time_limit_s + KILL_GRACE_S),
    max_task_retries, niceness (of the workers of a Ray instance this backend starts; None
    keeps Ray's default of 15, which makes the search yield the CPU to everything else on a
    shared machine), ship_code (send the project's code to the workers through the job's
    runtime environment when this backend starts or joins Ray; default: when joining a
    cluster by address), rung_fraction and rung_kind (also serve rung jobs: evaluator.rungs),
    lr_sweep (step sizes per evaluation: evaluator.lr_sweep)."""

    def __init__(self, workers=None, address=None, suite="default", seeds=DEFAULT_SEEDS,
                 time_limit_s=DEFAULT_TIME_LIMIT_S, device=None, cache_dir=None,
                 hard_timeout_s=None, max_task_retries=MAX_TASK_RETRIES, niceness=None,
                 gpus_per_worker=0.0, ship_code=None, rung_fraction=None, lr_sweep=1,
                 rung_kind="compressed"):
        self._owns_ray = _init_ray(address, workers, niceness,
                                   ship_code=bool(address) if ship_code is None else ship_code)
        self.workers = int(workers or ray.cluster_resources().get("CPU", os.cpu_count() or 1))
        self.device = device or ("cuda" if gpus_per_worker > 0 else "cpu")
        self.suite, self.seeds = resolve_suite(suite), tuple(int(s) for s in seeds)
        self.time_limit_s, self.lr_sweep = time_limit_s, lr_sweep
        self._rung = None
        if rung_fraction is not None:
            self.rung_suite = rung_suite(self.suite, rung_fraction, rung_kind)
            self._rung = (self.rung_suite, rung_time_limit(time_limit_s, rung_fraction))
        self.hard_timeout_s = hard_timeout_s if hard_timeout_s is not None else (
            None if time_limit_s is None else time_limit_s + KILL_GRACE_S)
        self.max_task_retries = max_task_retries
        self._options = {"num_cpus": 1, "num_gpus": gpus_per_worker, "max_restarts": -1,
                         "max_task_retries": 0}
        data = self.suite.load_data()
        self._data_hashes = {key: task.data_hash(data[key])
                             for key, task in self.suite.tasks.items()}
        self._queue: collections.deque = collections.deque()  # (job_id, text, rung, attempts)
        self._inflight: dict = {}      # ref -> ((job_id, text, rung, attempts), actor, dispatched)
        self._probes: dict = {}        # ref -> actor index: an actor not yet known to run
        self._failures = [0] * self.workers   # actors in a row that failed to start, per slot
        self._last_failure = "unknown"
        self._idle: list[int] = []
        self._actors = [self._new_actor(i) for i in range(self.workers)]
        self.baseline = baseline_metrics(
            self.suite, self.seeds, self.device, cache_dir=cache_dir,
            compute=lambda: ray.get(self._actors[0].baseline.remote()))
        self._baselines = {False: self.baseline}
        if self._rung is not None:
            self._baselines[True] = baseline_metrics(
                self.rung_suite, self.seeds, self.device, cache_dir=cache_dir,
                compute=lambda: ray.get(self._actors[0].baseline.remote(True)))

    @property
    def capacity(self) -> int:
        return self.workers

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._inflight)

    def _new_actor(self, index: int):
        actor = EvalWorker.options(**self._options).remote(
            index, self.suite, self.seeds, self.device, self.time_limit_s, self._data_hashes,
            self._rung, self.lr_sweep)
        self._probes[actor.info.remote()] = index
        return actor

    def worker_info(self) -> list[dict]:
        """EvalWorker.info of every actor (waits for them to start)."""
        return ray.get([a.info.remote() for a in self._actors])

    def worker_pids(self) -> list[int]:
        """Process id of every actor (waits for them to start)."""
        return [info["pid"] for info in self.worker_info()]

    def submit(self, job_id: int, program_text: str, rung: bool = False) -> None:
        if rung not in self._baselines:
            raise ValueError("this backend was made without a rung_fraction")
        self._queue.append((job_id, program_text, rung, 0))
        self._collect_probes()
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            job = self._queue.popleft()
            _, text, rung, _ = job
            index = self._idle.pop(0)
            ref = self._actors[index].evaluate.remote(text, self._baselines[rung], rung)
            self._inflight[ref] = (job, index, time.time())

    def poll(self, timeout_s: float | None = None) -> list:
        """Finished jobs, oldest finish first; waits up to timeout_s for at least one."""
        deadline = None if timeout_s is None else time.time() + timeout_s
        while True:
            self._collect_probes()
            done = self._collect_ready() + self._expire_overdue() + self._give_up_if_no_worker()
            self._dispatch()
            if done or not self.pending:
                done.sort(key=lambda item: item[0])
                return [result for _, result in done]
            wait_s = self._next_wait(deadline)
            if wait_s is not None and wait_s <= 0:
                return []
            ray.wait(list(self._inflight) + list(self._probes), num_returns=1, timeout=wait_s)

    def _next_wait(self, deadline):
        """Seconds to block in ray.wait: until the poll deadline or the next hard timeout."""
        limits = [] if deadline is None else [deadline - time.time()]
        if self.hard_timeout_s is not None and self._inflight:
            oldest = min(started for _, _, started in self._inflight.values())
            limits.append(oldest + self.hard_timeout_s - time.time() + 0.01)
        return max(0.0, min(limits)) if limits else None

    def _collect_probes(self) -> None:
        """Actors that answered their probe take work; one that died is replaced."""
        ready, _ = ray.wait(list(self._probes), num_returns=len(self._probes), timeout=0)
        for ref in ready:
            index = self._probes.pop(ref)
            try:
                ray.get(ref)
            except RayError as exc:
                self._failures[index] += 1
                self._last_failure = f"{type(exc).__name__}: {exc}"
                logging.getLogger(__name__).warning("worker %d failed to start: %s", index,
                                                    self._last_failure)
                if self._failures[index] < MAX_ACTOR_FAILURES:
                    self._replace_actor(index)
                continue
            self._failures[index] = 0
            self._idle.append(index)

    def _collect_ready(self) -> list:
        refs = list(self._inflight)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        done = []
        for ref in ready:
            job, index, _ = self._inflight.pop(ref)
            job_id, text, rung, attempts = job
            try:
                fitness, worker, finished = ray.get(ref)
            except RayTaskError as exc:   # the method itself raised: retrying cannot help
                done.append(self._failed(job_id, index, exc))
            except RayError as exc:       # the worker was lost: Ray restarts it; re-queue
                self._probes[self._actors[index].info.remote()] = index
                if attempts < self.max_task_retries:
                    self._queue.appendleft((job_id, text, rung, attempts + 1))
                else:
                    done.append(self._failed(job_id, index, exc))
            else:
                self._idle.append(index)
                done.append((finished, (job_id, fitness, worker)))
        return done

    def _failed(self, job_id: int, index: int, exc: Exception) -> tuple:
        fitness = Fitness.failure("error", f"{type(exc).__name__}: {exc}", self.seeds,
                                  suite=self.suite.name, suite_version=self.suite.version)
        if isinstance(exc, RayTaskError):
            self._idle.append(index)
        return time.time(), (job_id, fitness, f"ray{index}")

    def _give_up_if_no_worker(self) -> list:
        """Every worker slot failed to start repeatedly: fail the waiting jobs instead of
        waiting forever (a node without the dependencies, a data mismatch)."""
        if self._idle or self._inflight or self._probes or not self._queue:
            return []
        message = f"no worker could start: {self._last_failure}"
        done = [(time.time(), (job_id, Fitness.failure("error", message, self.seeds,
                                                       suite=self.suite.name,
                                                       suite_version=self.suite.version),
                               "ray"))
                for job_id, *_ in self._queue]
        self._queue.clear()
        return done

    def _expire_overdue(self) -> list:
        if self.hard_timeout_s is None:
            return []
        now, done = time.time(), []
        for ref, ((job_id, *_), index, started) in list(self._inflight.items()):
            if now - started < self.hard_timeout_s:
                continue
            del self._inflight[ref]
            ray.cancel(ref)                 # drops it if it is still queued
            self._replace_actor(index)      # a running call can only be stopped by a kill
            fitness = Fitness.failure("timeout", f"killed after {now - started:.1f} s",
                                      self.seeds, now - started, self.suite.name,
                                      self.suite.version)
            done.append((now, (job_id, fitness, f"ray{index}")))
        return done

    def _replace_actor(self, index: int) -> None:
        ray.kill(self._actors[index], no_restart=True)
        self._probes = {ref: i for ref, i in self._probes.items() if i != index}
        self._actors[index] = self._new_actor(index)

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors, self._inflight, self._queue = [], {}, collections.deque()
        self._probes, self._idle = {}, []
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False


def _code_package(root: str) -> str:
    """The packages a worker imports, copied into one `optsearch/` folder for py_modules (the
    checkout maps its folders to `optsearch.<name>`, so no folder of it is that package)."""
    target = os.path.join(root, "optsearch")
    for name in SHIPPED_PACKAGES:
        source = importlib.import_module(f"optsearch.{name}").__path__[0]
        shutil.copytree(source, os.path.join(target, name),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


class RayLogRouting:
    """Ray's log lines to `log_path`, and to the terminal only when verbose, while the `with`
    block lasts: the "ray" logger's lines, and the cluster's error messages (a worker or
    node died) that Ray's driver prints to stdout. Process-wide, like the terminal and Ray's
    logger: the command line enters it around a command that uses Ray. Outside it, Ray
    prints what it prints by default, except workers' output (`log_to_driver`)."""

    active: RayLogRouting | None = None

    def __init__(self, log_path=None, verbose=False):
        self.log_path, self.verbose = log_path, verbose
        self.logger = logging.getLogger("ray")

    def __enter__(self):
        self.removed = [] if self.verbose else list(self.logger.handlers)
        for handler in self.removed:
            self.logger.removeHandler(handler)
        self.printer = None
        if not self.verbose:   # Ray's driver prints cluster errors through this function
            self.printer = ray_worker.print_to_stdstream
            ray_worker.print_to_stdstream = self._log_cluster_message
        # Without a file, a NullHandler: else Python's last resort prints warnings anyway.
        self.file = logging.FileHandler(self.log_path) if self.log_path else logging.NullHandler()
        for logger in (self.logger, logging.getLogger(__name__)):
            logger.addHandler(self.file)
        RayLogRouting.active = self
        return self

    def _log_cluster_message(self, data, ignore_prefix=False) -> None:
        for line in data.get("lines", ()):
            self.logger.warning("(%s) %s", data.get("pid", "ray"), line)

    def __exit__(self, *exc) -> None:
        RayLogRouting.active = None
        if self.printer is not None:
            ray_worker.print_to_stdstream = self.printer
        for logger in (self.logger, logging.getLogger(__name__)):
            logger.removeHandler(self.file)
        self.file.close()
        for handler in self.removed:
            self.logger.addHandler(handler)


def _init_ray(address, workers, niceness=None, ship_code=False) -> bool:
    """Start a local Ray (or join `address`) unless one is running; True if we started it.
    ship_code: the job's runtime environment carries the project's code to every worker (Ray
    uploads it here, at init; a process that joined Ray itself decides that on its own).
    Workers' own output reaches the terminal only under a verbose RayLogRouting (it stays in
    Ray's session logs either way)."""
    if ray.is_initialized():
        return False
    verbose = RayLogRouting.active is not None and RayLogRouting.active.verbose
    with tempfile.TemporaryDirectory(prefix="optsearch-code-") as code_dir:
        runtime_env = {"py_modules": [_code_package(code_dir)]} if ship_code else None
        if address:
            ray.init(address=address, log_to_driver=verbose, runtime_env=runtime_env)
        else:
            if niceness is not None:   # read by the raylet this init starts, when it forks
                os.environ["RAY_worker_niceness"] = str(int(niceness))
            # "local": a new instance, never one that a `ray start` on this machine left
            # for ray.init() to find
            ray.init(address="local", num_cpus=workers or os.cpu_count(),
                     include_dashboard=False, log_to_driver=verbose, runtime_env=runtime_env)
    return True

"""The one interface the search driver uses to get programs evaluated, and its one factory.

    backend = make_backend("serial" | "ray" | "fake", workers=W, address=None, suite=..., seeds=...,
                           rung_fraction=None)
    backend.capacity                        # evaluations worth keeping in flight
    backend.suite, backend.seeds            # what every job is evaluated on
    backend.submit(job_id, program_text)    # never blocks; jobs beyond capacity are queued
    backend.submit(job_id, program_text, rung=True)   # on `backend.rung_suite` (evaluator.rungs)
    backend.poll(timeout_s)                 # -> [(job_id, Fitness, worker_name)], finish order
    backend.close()

Every submitted job comes back from `poll` exactly once, with a Fitness whatever happened to
the program or the worker (failures are values). Backends are context managers.

"fake" scores the program text without training (evaluator.fake_backend): a kind of this
factory like the others, so the search, its tests and the CLI reach every backend through
one call, and a config can name it.
"""

from __future__ import annotations

import collections
import time

from optsearch.evaluator.evaluate import DEFAULT_SEEDS, DEFAULT_TIME_LIMIT_S
from optsearch.evaluator.heap import release_free_memory
from optsearch.evaluator.suites import resolve_suite


class BackendUnavailable(ValueError):
    """The backend cannot start because of what it was asked for (an unknown kind or suite):
    the caller's input, reported to a user as one line."""


class Backend:
    """Base class: the interface above plus context-manager support."""

    capacity: int = 1
    suite = None   # the evaluator.suites.Suite every job is evaluated on
    seeds: tuple = DEFAULT_SEEDS
    rung_suite = None   # the cheap rung (made with rung_fraction), or None
    lr_sweep = 1        # step sizes per evaluation (evaluator.lr_sweep); keys cached fitness

    def submit(self, job_id: int, program_text: str, rung: bool = False) -> None:
        raise NotImplementedError

    def poll(self, timeout_s: float | None = None) -> list:
        raise NotImplementedError

    def close(self) -> None:
        pass

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet returned by poll."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _serial(workers, address, suite, seeds, time_limit_s, **options):
    from optsearch.evaluator.serial_backend import SerialBackend
    return SerialBackend(suite=suite, seeds=seeds, time_limit_s=time_limit_s, **options)


def _ray(workers, address, suite, seeds, time_limit_s, **options):
    from optsearch.evaluator.ray_backend import RayBackend  # the only import of ray
    return RayBackend(workers=workers, address=address, suite=suite, seeds=seeds,
                      time_limit_s=time_limit_s, **options)


def _fake(workers, address, suite, seeds, time_limit_s, **options):
    # No training: the suite and time limit do not apply (its suite is fake_backend.FAKE_SUITE).
    from optsearch.evaluator.fake_backend import FakeBackend
    return FakeBackend(workers=workers or 1, seeds=seeds, **options)


_KINDS = {"serial": _serial, "ray": _ray, "fake": _fake}
BACKEND_KINDS = tuple(_KINDS)



class InProcessBackend(Backend):
    """A backend that evaluates in the calling process, inside `poll`, in submission order:
    deterministic, so a seeded search is reproducible. Subclasses say how one job is
    evaluated (`evaluate_job`) and which submissions they accept (`accepts`)."""

    capacity = 1
    # Evaluations between returns of the heap's free pages to the OS (evaluator.heap): the
    # evaluations' tensors would otherwise grow the search's process by ~1 MB each.
    release_every = 100

    def __init__(self):
        self._queue: collections.deque = collections.deque()
        self.evaluated = 0

    def accepts(self, rung: bool) -> bool:
        return not rung

    def evaluate_job(self, program_text: str, rung: bool):
        raise NotImplementedError

    def submit(self, job_id: int, program_text: str, rung: bool = False) -> None:
        if not self.accepts(rung):
            raise ValueError(f"{type(self).__name__} was made without a rung")
        self._queue.append((job_id, program_text, rung))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def poll(self, timeout_s: float | None = None) -> list:
        """Evaluate queued jobs in order: at least one, then more while `timeout_s` lasts."""
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        done = []
        while self._queue:
            job_id, text, rung = self._queue.popleft()
            done.append((job_id, self.evaluate_job(text, rung), self.worker_name))
            self.evaluated += 1
            if self.evaluated % self.release_every == 0:
                release_free_memory()
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return done

def make_backend(kind: str, workers: int | None = None, address: str | None = None,
                 suite="default", seeds=DEFAULT_SEEDS, time_limit_s=DEFAULT_TIME_LIMIT_S,
                 **options) -> Backend:
    """A backend of `kind`; `options` go to the backend's constructor (see its docstring),
    e.g. rung_fraction: also evaluate `submit(..., rung=True)` jobs on the suite at that
    fraction of its steps (evaluator.rungs).

    Raises BackendUnavailable for an unknown kind or suite, before anything starts."""
    if kind not in _KINDS:
        raise BackendUnavailable(f"cannot start the {kind} backend: unknown backend {kind!r}; "
                                 f"known: {', '.join(BACKEND_KINDS)}")
    if kind != "fake":
        try:
            suite = resolve_suite(suite)
        except KeyError as exc:
            raise BackendUnavailable(f"cannot start the {kind} backend: {exc.args[0]}") from None
    return _KINDS[kind](workers, address, suite, seeds, time_limit_s, **options)

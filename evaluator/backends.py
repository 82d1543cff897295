"""The one interface the search driver uses to get programs evaluated, and its factory.

    backend = make_backend("serial" | "ray", workers=W, address=None, suite=..., seeds=...)
    backend.capacity                        # evaluations worth keeping in flight
    backend.submit(job_id, program_text)    # never blocks; jobs beyond capacity are queued
    backend.poll(timeout_s)                 # -> [(job_id, Fitness, worker_name)], finish order
    backend.close()

Every submitted job comes back from `poll` exactly once, with a Fitness whatever happened to
the program or the worker (failures are values). Backends are context managers.
"""

from __future__ import annotations

from optsearch.evaluator.evaluate import DEFAULT_SEEDS, DEFAULT_TIME_LIMIT_S

BACKEND_KINDS = ("serial", "ray")


class Backend:
    """Base class: the interface above plus context-manager support."""

    capacity: int = 1
    suite = None   # the evaluator.suites.Suite every job is evaluated on

    def submit(self, job_id: int, program_text: str) -> None:
        raise NotImplementedError

    def poll(self, timeout_s: float | None = None) -> list:
        raise NotImplementedError

    def close(self) -> None:
        pass

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet returned by poll."""
        raise NotImplementedError

    @property
    def suite_version(self) -> str:
        """Version of the suite this backend evaluates on (the seeds are not part of it)."""
        return self.suite.version

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_backend(kind: str, workers: int | None = None, address: str | None = None,
                 suite="default", seeds=DEFAULT_SEEDS, time_limit_s=DEFAULT_TIME_LIMIT_S,
                 **options) -> Backend:
    """A backend of `kind`; `options` go to the backend's constructor (see its docstring)."""
    if kind == "serial":
        from optsearch.evaluator.serial_backend import SerialBackend
        return SerialBackend(suite=suite, seeds=seeds, time_limit_s=time_limit_s, **options)
    if kind == "ray":
        from optsearch.evaluator.ray_backend import RayBackend  # the only import of ray
        return RayBackend(workers=workers, address=address, suite=suite, seeds=seeds,
                          time_limit_s=time_limit_s, **options)
    raise ValueError(f"unknown backend {kind!r}; known: {', '.join(BACKEND_KINDS)}")

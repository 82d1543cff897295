"""The evaluation half of a search config: the backend and the shared cache it names.

The search gets its backend from the evaluator's one factory, `evaluator.backends.make_backend`
(a plain import); this module only turns `EvaluationConfig` fields into that call's arguments,
because the config is the search's and the evaluator never sees it. Why the driver takes a
factory of the config rather than a ready backend: `resume` rebuilds the backend from the
run's own saved config, so the translation is needed there anyway, and every caller of
`start_run` would otherwise repeat it.
"""

from __future__ import annotations

import os

from optsearch.evaluator.backends import Backend, make_backend
from optsearch.evaluator.cache import FitnessCache
from optsearch.evaluator.target_backend import make_target_backend
from optsearch.search.config import EvaluationConfig


def worker_count(ev: EvaluationConfig) -> int:
    """evaluation.workers, where 0 means one worker per CPU core."""
    return ev.workers or os.cpu_count() or 1


def backend_for(ev: EvaluationConfig, suite=None) -> Backend:
    """The backend the config names (with hurdles on, it also serves the rung); on `suite`
    instead (a name or Suite: the funnel's larger tasks) it serves full evaluations only.
    Raises evaluator.backends.BackendUnavailable for an unknown backend kind or suite, or a
    target that cannot be used. Target mode (evaluation.target) imitates the target in
    process, unless a `suite` is asked for."""
    if ev.target and suite is None:
        return make_target_backend(ev.target, ev.target_steps)
    options = {"delay_s": ev.fake_delay_s} if ev.backend == "fake" else {}
    workers = worker_count(ev)
    if ev.backend == "ray":   # workers 0: every CPU of the cluster (this machine's, if local)
        workers, options["gpus_per_worker"] = ev.workers or None, ev.gpus_per_worker
    if ev.hurdles and suite is None:
        options["rung_fraction"], options["rung_kind"] = ev.rung_fraction, ev.rung_kind
    if ev.lr_sweep > 1 and suite is None and ev.backend != "fake":
        options["lr_sweep"] = ev.lr_sweep   # the funnel re-checks stored programs as they are
    return make_backend(ev.backend, workers=workers, address=ev.address or None,
                        suite=ev.suite if suite is None else suite, seeds=tuple(range(ev.seeds)),
                        **options)


def open_shared_cache(ev: EvaluationConfig) -> FitnessCache | None:
    """The evaluator's cross-run FitnessCache, when the config names one."""
    return FitnessCache(ev.shared_cache) if ev.shared_cache else None

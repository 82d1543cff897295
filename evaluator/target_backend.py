"""TargetBackend: target mode's evaluations -- imitation of a target optimizer, in process.

The target's gradient stream is recorded once, when the backend is made; every candidate is
then scored against it (evaluator.imitation). An evaluation costs milliseconds, less than
shipping it to a worker would, so jobs run in the calling process inside `poll`, in
submission order, like the serial backend: a seeded target-mode search is reproducible.
There is no rung: an evaluation is already cheaper than a proxy-task rung.
"""

from __future__ import annotations

import dataclasses

from optsearch.evaluator.backends import BackendUnavailable, InProcessBackend
from optsearch.evaluator.imitation import (
    DEFAULT_STREAM,
    StreamSpec,
    TargetDiverged,
    imitation_fitness,
    record_stream,
)
from optsearch.evaluator.suites import Suite
from optsearch.evaluator.targets import TargetError, resolve_target


class TargetBackend(InProcessBackend):
    worker_name = "target"

    def __init__(self, target: str, stream: StreamSpec = DEFAULT_STREAM):
        """target: a program file, a shipped reference name or an optimizer class name
        (evaluator.targets.resolve_target: raises ProgramError or TargetError)."""
        self.target = resolve_target(target)
        self.stream = record_stream(self.target, stream)
        # No tasks: the version (target and stream) keys cached imitation fitness.
        self.suite = Suite(f"target:{self.target.label}", {},
                           version=f"target-{self.target.version}-stream-{stream.version()}")
        self.seeds = tuple(range(self.stream.seeds))
        super().__init__()

    def evaluate_job(self, program_text: str, rung: bool):
        return imitation_fitness(program_text, self.stream, self.target.label,
                                 self.suite.version)


def make_target_backend(target: str, steps: int = DEFAULT_STREAM.steps) -> TargetBackend:
    """A TargetBackend on a stream of `steps` steps; BackendUnavailable for a target that
    cannot be used (an invalid program file raises its ProgramError, reported as
    FILE:LINE: message)."""
    try:
        return TargetBackend(target, dataclasses.replace(DEFAULT_STREAM, steps=steps))
    except (TargetError, TargetDiverged) as exc:
        raise BackendUnavailable(f"target: {exc}") from None

"""Running an update rule on a suite's tasks: what evaluation and the AdamW baseline share.

`compile_checked` turns a program into the batched rule the tasks apply; `run_tasks` trains
with it on every task of a suite and returns the raw per-seed metrics. Scoring them against
the baseline is `evaluate`'s job; computing the baseline is `baseline`'s. Both build on this
module, so neither needs the other's internals.
"""

from __future__ import annotations

import math
import time

from optsearch.primitives.analysis import check
from optsearch.primitives.codegen import compile_program
from optsearch.primitives.parser import parse
from optsearch.primitives.program import Program


def compile_checked(program):
    """Program or program text -> batched update rule; raises ProgramError if invalid."""
    if not isinstance(program, Program):
        program = parse(program)
    check(program)
    return compile_program(program, batch_dims=1)


def run_tasks(rule, suite, seeds, device="cpu", data=None, time_limit_s=None,
              groups: int = 1) -> dict:
    """Raw TaskResults (task key -> TaskResult), stopping at the first failing task (with
    member groups, `ProxyTask.run(groups=...)`: the first task on which every group failed).

    The time limit is shared: each task gets what the previous ones left over.
    """
    deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s
    results = {}
    for key, task in suite.tasks.items():
        task_data = data[key] if data is not None else task.load_data()
        remaining = None if deadline is None else max(0.0, deadline - time.perf_counter())
        extra = {"groups": groups} if groups > 1 else {}
        result = task.run(rule, list(seeds), task_data, device=device, time_limit_s=remaining,
                          **extra)
        if result.status == "ok" and not all(math.isfinite(m) for m in result.metric):
            result.status = "diverged"   # belt and braces: a non-finite metric is a failure
        results[key] = result
        if result.status != "ok":
            break
    return results

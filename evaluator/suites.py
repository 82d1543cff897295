"""A suite: the proxy tasks one evaluation runs, and the version that keys cached results.

Named suites come from `proxy_tasks.SUITES` and use `proxy_tasks.suite_version`. A custom
suite (a list of `(task, scale, overrides)`, e.g. a longer variant for a benchmark or a
test) gets its version the same way: a hash of every task's config and data. A `Suite`
holds task objects only, so it pickles to Ray workers.
"""

from __future__ import annotations

import hashlib
import json

from optsearch import proxy_tasks


def task_key(name: str, scale: int) -> str:
    """How a task is named in a Fitness: the plain name at search scale, `name@scale` else."""
    return name if scale == 1 else f"{name}@{scale}"


class Suite:
    def __init__(self, name: str, tasks: dict, version: str | None = None):
        self.name = name
        self.tasks = dict(tasks)          # task key -> task object (load_data / run)
        self._version = version

    @classmethod
    def named(cls, name: str) -> Suite:
        if name not in proxy_tasks.SUITES:
            raise KeyError(f"unknown suite {name!r}; known: {', '.join(proxy_tasks.SUITES)}")
        tasks = _tasks(proxy_tasks.suite_entries(name))
        return cls(name, tasks, proxy_tasks.suite_version(name))

    @classmethod
    def custom(cls, name: str, entries) -> Suite:
        """entries: iterable of (task name, scale) or (task name, scale, {field: value})."""
        return cls(name, _tasks(entries))

    @classmethod
    def scaled(cls, base_suite: str, scale: int) -> Suite:
        """The meta-validation suite `base@scale`: the named suite `base@scale` when one is
        declared, else the base suite's tasks at `scale` (10 or 100) with their overrides."""
        named = f"{base_suite}@{scale}"
        if named in proxy_tasks.SUITES:
            return cls.named(named)
        if base_suite not in proxy_tasks.SUITES:
            raise KeyError(f"unknown suite {base_suite!r}; known: {', '.join(proxy_tasks.SUITES)}")
        return cls.custom(named, [(name, scale, overrides)
                                  for name, _, overrides in proxy_tasks.suite_entries(base_suite)])

    @property
    def version(self) -> str:
        # Lazy: hashing a custom suite loads every task's data once.
        if self._version is None:
            parts = [[key, task.fingerprint(), task.data_hash(task.load_data())]
                     for key, task in self.tasks.items()]
            blob = json.dumps({"suite": self.name, "tasks": parts}, sort_keys=True, default=str)
            self._version = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return self._version

    def load_data(self) -> dict:
        """Task key -> that task's data (dict of numpy arrays)."""
        return {key: task.load_data() for key, task in self.tasks.items()}

    def __getstate__(self):
        # Ship the version with the suite: workers never re-hash the data.
        return {**self.__dict__, "_version": self.version}

    def __repr__(self) -> str:
        return f"Suite({self.name!r}, tasks={list(self.tasks)})"


def _tasks(entries) -> dict:
    """Task key -> task object; a key names its config overrides (`name,batch_size=512`)."""
    tasks = {}
    for entry in entries:
        task_name, scale, overrides = (*entry, {})[:3]
        key = task_key(task_name, scale) + "".join(
            f",{k}={v}" for k, v in sorted(overrides.items()))
        tasks[key] = proxy_tasks.get_task(task_name, scale, **overrides)
    return tasks


def resolve_suite(suite) -> Suite:
    return suite if isinstance(suite, Suite) else Suite.named(suite)


def evaluation_version(suite: Suite, seeds) -> str:
    """What a cached fitness depends on besides the program: the suite and the seeds."""
    return f"{suite.version}/seeds={','.join(str(int(s)) for s in seeds)}"

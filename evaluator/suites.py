"""A suite: the proxy tasks one evaluation runs, and the version that keys cached results.

The version is the one answer to "could a cached result be stale?": a hash of every task's
config (including its code `revision`) and its data, so the fitness caches, the cached AdamW
baselines and the funnel's stored stages are invalidated when a config, the corpus (stdlib
files differ across Python versions) or a bundled data set changes. `evaluation_version`
adds the seeds; it is the key every fitness cache uses. `Suite.version` and
`evaluation_version` are the only version functions.

Named suites (`proxy_tasks.SUITES`) and custom ones (a list of `(task, scale, overrides)`,
e.g. a longer variant for a benchmark or the funnel's larger scales) hash differently laid
out manifests: per named entry its task, scale, task hash and any overrides; per custom
entry its key, config fingerprint and data hash. Both layouts stay as they are because
caches on disk were written with them, and a new layout would silently orphan those.
A `Suite` holds task objects only, so it pickles to Ray workers.

`S@10` and `S@100` name the meta-validation suites (the funnel's stages): suite S's tasks,
with their overrides, at ~10x and ~100x scale (`Suite.scaled`); `resolve_suite` reads them.
"""

from __future__ import annotations

import functools

from optsearch import proxy_tasks
from optsearch.proxy_tasks.base import config_hash


def task_key(name: str, scale: int) -> str:
    """How a task is named in a Fitness: the plain name at search scale, `name@scale` else."""
    return name if scale == 1 else f"{name}@{scale}"


META_SCALES = (10, 100)   # the meta-validation scales every task defines


class Suite:
    def __init__(self, name: str, tasks: dict, version: str | None = None):
        self.name = name
        self.tasks = dict(tasks)          # task key -> task object (load_data / run)
        self._version = version

    @classmethod
    def named(cls, name: str) -> Suite:
        if name not in proxy_tasks.SUITES:
            raise KeyError(f"unknown suite {name!r}; known: {', '.join(proxy_tasks.SUITES)}")
        entries = proxy_tasks.suite_entries(name)
        rows = []
        for task_name, scale, overrides in entries:
            items = tuple(sorted(overrides.items()))
            # Overrides are hashed only where present: an entry without any keeps its hash.
            rows.append([task_name, scale, _task_hash(task_name, scale, items)]
                        + ([list(map(list, items))] if overrides else []))
        return cls(name, _tasks(entries), config_hash({"suite": name, "tasks": rows}))

    @classmethod
    def custom(cls, name: str, entries) -> Suite:
        """entries: iterable of (task name, scale) or (task name, scale, {field: value})."""
        return cls(name, _tasks(entries))

    @classmethod
    def scaled(cls, base_suite: str, scale: int) -> Suite:
        """The meta-validation suite `base@scale`: the named suite `base@scale` when one is
        declared, else the base suite's tasks at `scale` (10 or 100) with their overrides."""
        if scale not in META_SCALES:
            raise KeyError(f"suite {base_suite}@{scale}: the scale must be one of "
                           f"{', '.join(map(str, META_SCALES))}")
        named = f"{base_suite}@{scale}"
        if named in proxy_tasks.SUITES:
            return cls.named(named)
        if base_suite not in proxy_tasks.SUITES:
            raise KeyError(f"unknown suite {base_suite!r}; known: {', '.join(proxy_tasks.SUITES)}")
        return cls.custom(named, [(name, scale, overrides)
                                  for name, _, overrides in proxy_tasks.suite_entries(base_suite)])

    @property
    def version(self) -> str:
        """Hash of the tasks' configs and data (see the module docstring); a named suite's is
        computed when it is made, a custom one's lazily, as it loads every task's data."""
        if self._version is None:
            rows = [[key, task.fingerprint(), task.data_hash(task.load_data())]
                    for key, task in self.tasks.items()]
            self._version = config_hash({"suite": self.name, "tasks": rows})
        return self._version

    def load_data(self) -> dict:
        """Task key -> that task's data (dict of numpy arrays)."""
        return {key: task.load_data() for key, task in self.tasks.items()}

    def __getstate__(self):
        # Ship the version with the suite: workers never re-hash the data.
        return {**self.__dict__, "_version": self.version}

    def __repr__(self) -> str:
        return f"Suite({self.name!r}, tasks={list(self.tasks)})"


@functools.cache
def _task_hash(name: str, scale: int, overrides: tuple = ()) -> str:
    """One named-suite task's config and data hash; memoised because every `Suite.named` call
    needs it and it loads the task's data."""
    task = proxy_tasks.get_task(name, scale, **dict(overrides))
    return config_hash({"task": task.fingerprint(), "data": task.data_hash(task.load_data())})


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
    """A Suite, a suite name (`default`) or a meta-validation name (`default@10`) -> Suite."""
    if isinstance(suite, Suite):
        return suite
    base, at, scale = str(suite).partition("@")
    if not at:
        return Suite.named(base)
    if not scale.isdigit():
        raise KeyError(f"suite {suite!r}: expected NAME@SCALE with SCALE one of "
                       f"{', '.join(map(str, META_SCALES))}")
    return Suite.scaled(base, int(scale))


def evaluation_version(suite: Suite, seeds, lr_sweep: int = 1) -> str:
    """What a cached fitness depends on besides the program: the suite, the seeds and the
    number of step sizes swept (evaluator.lr_sweep)."""
    sweep = f"/lr_sweep={lr_sweep}" if lr_sweep > 1 else ""
    return f"{suite.version}/seeds={','.join(str(int(s)) for s in seeds)}{sweep}"

"""Cheap proxy training tasks that score candidate update rules (see docs/PROXIES.md)."""

from optsearch.proxy_tasks.base import TaskResult
from optsearch.proxy_tasks.registry import SUITES, TASK_NAMES, get_task, suite_entries

__all__ = ["SUITES", "TASK_NAMES", "TaskResult", "get_task", "suite_entries"]

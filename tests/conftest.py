"""Shared fixtures. Plain helper functions are in support.py."""

import pytest
import torch

from optsearch import proxy_tasks

# Tests run on 2 cores next to Ray workers: keep torch from oversubscribing them.
torch.set_num_threads(1)


@pytest.fixture
def tiny_meta_suites(monkeypatch):
    """The real 10x/100x suites take minutes per program; the funnel's and the main job's
    rules are the same on tiny ones."""
    monkeypatch.setitem(proxy_tasks.SUITES, "test@10", [("digits_mlp", 0)])
    monkeypatch.setitem(proxy_tasks.SUITES, "test@100", [("noisy_quadratic", 0)])


def pytest_terminal_summary(terminalreporter):
    """A browser check that did not run is said once, visibly, not only among the skips."""
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        if "browser check did not run" in reason:
            terminalreporter.write_sep("!", reason.removeprefix("Skipped: "), yellow=True,
                                       bold=True)
            return

"""The `paper` pool option: mutation draws new functions from the Lion paper's pool (no
per-tensor `mean`), selected by `[mutation] pool` or `--pool` in search and run."""

import numpy as np
import pytest

from optsearch.cli.cmd_search import build_config
from optsearch.cli.main import build_parser
from optsearch.primitives.analysis import infer_kinds
from optsearch.primitives.pool import POOL, POOLS
from optsearch.primitives.reference import load_reference
from optsearch.search.config import Config, ConfigError, MutationConfig
from optsearch.search.mutation import Mutator, insert, replace


def test_paper_pool_is_the_table_without_per_tensor_mean():
    """Rule: the paper's pool has no per-tensor mean; everything else is the table's."""
    assert "mean" not in POOLS["paper"] and "mean" in POOLS["default"]
    assert set(POOLS["default"]) == set(POOL)
    assert set(POOLS["default"]) - set(POOLS["paper"]) == {"mean"}


def test_mutation_with_the_paper_pool_never_draws_mean():
    """Rule: inserts and replacements draw only from the configured selection."""
    mutator = Mutator(MutationConfig(pool="paper"))
    assert mutator.names == POOLS["paper"]
    rng = np.random.default_rng(0)
    program = load_reference("adamw")
    kinds = infer_kinds(program).kinds
    drawn = set()
    for _ in range(3000):
        for op in (insert, replace):
            child, _ = op(program, kinds, rng, mutator.names)
            if child is not None:
                drawn |= {s.op for s in child.statements}
    assert "mean" not in drawn and {"norm", "dot", "cosine_sim"} <= drawn


def test_default_pool_still_draws_mean():
    """Rule: the default selection is the whole table (mean included)."""
    rng = np.random.default_rng(1)
    program = load_reference("adamw")
    kinds = infer_kinds(program).kinds
    drawn = {s.op for _ in range(3000)
             for child, _ in [insert(program, kinds, rng)] if child is not None
             for s in child.statements}
    assert "mean" in drawn


def test_pool_option_in_config_and_command_line():
    """Rule: `--pool paper` reaches `[mutation] pool`; an unknown pool is a config error."""
    assert Config().mutation.pool == "default"
    args = build_parser().parse_args(["search", "--pool", "paper"])
    assert build_config(args).mutation.pool == "paper"
    args = build_parser().parse_args(["run", "--pool", "paper"])
    assert build_config(args).mutation.pool == "paper"
    with pytest.raises(ConfigError, match="mutation.pool"):
        Config().with_overrides(pool="nosuch")

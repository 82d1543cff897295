"""The pool table: the required list of primitives is present, every entry is total, docs are generated."""

import subprocess
import sys

import torch

from optsearch.primitives.pool import POOL

REQUIRED = ["add", "sub", "mul", "div", "max", "min", "power", "interp", "abs", "sign", "sqrt", "square", "cube", "cbrt", "exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "reciprocal", "negative", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "clip", "norm", "mean", "dot", "cosine_sim", "clip_by_norm", "pi", "e", "eps"]


def test_pool_has_the_required_functions_and_at_least_45_entries():
    assert set(REQUIRED) <= set(POOL) and len(POOL) >= 45


def test_every_primitive_is_total_on_finite_inputs():
    # No NaN from a domain error (overflow to inf is allowed: it is caught as divergence).
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    for p in POOL.values():
        args = [x, x.flip(0), torch.tensor(0.3, dtype=torch.float64)][: p.arity]
        out = p.torch_fn(x) if p.arity == 0 else (
            p.torch_fn(*args, bd=0) if p.reduces else p.torch_fn(*args))
        assert not torch.isnan(out).any(), p.name


def test_sign_of_zero_is_zero_and_division_is_guarded():
    assert POOL["sign"].torch_fn(torch.tensor(0.0)) == 0
    assert torch.isfinite(POOL["div"].torch_fn(torch.tensor(1.0), torch.tensor(0.0)))


def test_docs_page_is_generated_from_the_table():
    proc = subprocess.run([sys.executable, "scripts/gen_pool_docs.py", "--check"], check=False)
    assert proc.returncode == 0, "run scripts/gen_pool_docs.py to refresh docs/primitives.md"


def test_docs_table_cells_escape_pipes():
    # `|a|` inside a cell must not split the Markdown table: every row has the header's cells.
    import re

    from scripts.gen_pool_docs import render

    rows = [r for r in render().splitlines() if r.startswith("| ")]
    widths = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
    assert len(rows) == len(POOL) + 1 and len(widths) == 1


def test_every_entry_has_kinds_cost_and_a_doc():
    for p in POOL.values():
        assert len(p.arg_kinds) == p.arity and p.cost >= 0 and p.doc, p.name
        assert p.sympy_fn is not None or p.reduces, p.name  # reductions stay uninterpreted

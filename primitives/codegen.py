"""Compile a program's live part into a Python function of torch operations.

The source is generated from the checked `Program` model only (renamed variables, pool
functions, `repr` of floats), never from user text, then compiled once and cached. Literals
used as call arguments are materialised once per (dtype, device) as 0-d tensors; literals in
infix arithmetic stay Python floats, which torch handles fastest.
"""

from __future__ import annotations

import functools

import torch

from optsearch.primitives.dataflow import definitions
from optsearch.primitives.liveness import live_program, live_state_slots
from optsearch.primitives.pool import POOL
from optsearch.primitives.printer import format_constant
from optsearch.primitives.program import Program

_INLINE = {"add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "neg": "-{0}"}


class CompiledRule:
    """The update-rule protocol: `update, new_state = rule(w, g, state, lr)`."""

    def __init__(self, program: Program, batch_dims: int):
        self.program = program
        self.n_slots = program.n_slots
        self.batch_dims = batch_dims
        self.live_slots = live_state_slots(program)
        self.source, self._constants = generate_source(live_program(program), batch_dims)
        namespace = {f"f_{name}": prim.torch_fn for name, prim in POOL.items()}
        exec(compile(self.source, f"<optsearch:{program.name}>", "exec"), namespace)  # noqa: S102
        self._fn = namespace["rule"]
        self._const_cache: dict = {}

    def _consts(self, like: torch.Tensor):
        key = (like.dtype, like.device)
        if key not in self._const_cache:
            self._const_cache[key] = tuple(
                torch.full((), c, dtype=like.dtype, device=like.device) for c in self._constants)
        return self._const_cache[key]

    def __call__(self, w, g, state, lr):
        if not isinstance(lr, torch.Tensor):
            lr = torch.tensor(lr, dtype=w.dtype, device=w.device)
        update, *new_state = self._fn(w, g, *state, lr, self._consts(w))
        return update, tuple(new_state)


def generate_source(program: Program, batch_dims: int) -> tuple[str, list[float]]:
    """Python source of `def rule(p0, .., pN, C)` for the (live) program, and its constants."""
    names = {("in", k): f"p{k}" for k in range(len(program.params))}
    live_slots = live_state_slots(program)
    constants: list[float] = []
    lines = [f"def rule({', '.join(names.values())}, C):"]
    for node, reads in definitions(program):
        if node == "returns":
            # A dead slot returns its input untouched: zeros stay zeros, nothing is computed.
            outs = [names[r] if j == 0 or (j - 1) in live_slots else f"p{j + 1}"
                    for j, r in enumerate(reads)]
            lines.append(f"    return ({', '.join(outs)},)")
            break
        stmt = program.statements[node[1]]
        names[node] = f"t{node[1]}"
        lines.append(f"    t{node[1]} = {_expression(stmt, reads, names, constants, batch_dims)}")
    return "\n".join(lines) + "\n", constants


def _expression(stmt, reads, names, constants, batch_dims) -> str:
    all_literal = all(r is None for r in reads)
    args = []
    for arg, src in zip(stmt.args, reads):
        if src is not None:
            args.append(names[src])
        elif stmt.op in _INLINE and not all_literal:
            args.append(f"({format_constant(arg)})")
        else:
            constants.append(float(arg))
            args.append(f"C[{len(constants) - 1}]")
    if stmt.op in _INLINE:
        return _INLINE[stmt.op].format(*args)
    if POOL[stmt.op].arity == 0:
        return f"f_{stmt.op}(p0)"
    if POOL[stmt.op].reduces:
        args.append(f"bd={batch_dims}")
    return f"f_{stmt.op}({', '.join(args)})"


@functools.lru_cache(maxsize=4096)
def compile_program(program: Program, batch_dims: int = 0) -> CompiledRule:
    """A fast callable for the program (cached: programs are immutable and hashable)."""
    return CompiledRule(program, batch_dims)

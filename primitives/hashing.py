"""Keys that detect duplicate programs before they cost an evaluation.

- `structural_hash`: a Merkle hash of the live dataflow. Each value hashes its operation and
  its arguments' hashes (sorted for commutative operations), inputs hash their role. So it is
  invariant to variable names, dead code, the order of independent statements and the
  argument order of commutative operations.
- `fingerprint`: behaviour. Run the live program for a few steps on fixed seeded tensors in
  float64 and hash the rounded updates; catches algebraic equivalences the structure misses.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from optsearch.primitives.dataflow import definitions
from optsearch.primitives.liveness import live_program, live_state_slots
from optsearch.primitives.pool import POOL
from optsearch.primitives.printer import format_constant
from optsearch.primitives.program import Program

FINGERPRINT_STEPS = 6
FINGERPRINT_SHAPE = (4, 8)
_MANTISSA_BITS = 20  # round to ~6 significant digits: float noise must not split equal programs


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _input_role(program: Program, k: int) -> str:
    if k == 0:
        return "w"
    if k == 1:
        return "g"
    return "lr" if k == len(program.params) - 1 else f"slot{k - 2}"


def structural_hash(program: Program) -> str:
    program = live_program(program)
    hashes = {("in", k): _digest(_input_role(program, k)) for k in range(len(program.params))}
    live_slots = live_state_slots(program)
    for node, reads in definitions(program):
        if node == "returns":
            outs = [hashes[src] if j == 0 or (j - 1) in live_slots else "dead"
                    for j, src in enumerate(reads)]
            return _digest("|".join(outs))
        stmt = program.statements[node[1]]
        args = [hashes[src] if src is not None else "c" + format_constant(arg)
                for src, arg in zip(reads, stmt.args)]
        if POOL[stmt.op].commutative:
            args.sort()
        hashes[node] = _digest(f"{stmt.op}({','.join(args)})")
    raise AssertionError("definitions() always ends with the returns")


def _round(values: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(values, nan=7.77e300, posinf=8.88e300, neginf=-8.88e300)
    mantissa, exponent = np.frexp(values)
    return np.stack([np.round(mantissa * 2**_MANTISSA_BITS), exponent]).astype(np.int64)


def fingerprint(program: Program) -> str:
    from optsearch.primitives.interpreter import (
        run_steps,  # local: interpreter imports hashing's peers
    )

    gen = torch.Generator().manual_seed(1234)
    w = torch.randn(FINGERPRINT_SHAPE, generator=gen, dtype=torch.float64)
    grads = [torch.randn(FINGERPRINT_SHAPE, generator=gen, dtype=torch.float64)
             for _ in range(FINGERPRINT_STEPS)]
    lrs = [1.0 - 0.1 * i for i in range(FINGERPRINT_STEPS)]
    updates = run_steps(live_program(program), w, grads, lrs)
    flat = np.concatenate([u.numpy().ravel() for u in updates])
    return _digest(_round(flat).tobytes().hex())

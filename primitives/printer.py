"""Canonical text form of a program; `parse(format_program(p)) == p` for every valid program."""

from __future__ import annotations

from optsearch.primitives.pool import POOL
from optsearch.primitives.program import Arg, Program, Statement


def format_constant(value: float) -> str:
    """Shortest text that reads back to the same float (Python's repr), e.g. 0.9, 1e-08."""
    return repr(float(value))


def format_arg(arg: Arg) -> str:
    return arg if isinstance(arg, str) else format_constant(arg)


def format_expression(stmt: Statement) -> str:
    prim = POOL[stmt.op]
    args = [format_arg(a) for a in stmt.args]
    if prim.infix and prim.arity == 2:
        return f"{args[0]} {prim.infix} {args[1]}"
    if prim.infix and prim.arity == 1:
        return f"-{args[0]}"
    return f"{stmt.op}({', '.join(args)})"


def format_statement(stmt: Statement) -> str:
    return f"{stmt.target} = {format_expression(stmt)}"


def format_program(program: Program) -> str:
    lines = [f"def {program.name}({', '.join(program.params)}):"]
    lines += [f"    {format_statement(s)}" for s in program.statements]
    lines.append(f"    return {', '.join(program.returns)}")
    return "\n".join(lines) + "\n"

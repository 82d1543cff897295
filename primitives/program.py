"""The program model: an immutable straight-line program over the function pool.

`def train(w, g, *slots, lr): ...; return update, *slots` -- positional parameters are the
weight, the gradient, zero or more state slots and the learning-rate schedule value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Arg = str | float  # a variable name or a numeric constant


class ProgramError(ValueError):
    """A rejected program: message plus the 1-based line (0 if unknown) and column."""

    def __init__(self, message: str, line: int = 0, col: int = 0):
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col

    def one_line(self, filename: str) -> str:
        return f"error: {filename}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Statement:
    target: str
    op: str  # a pool name; infix operators are "add", "sub", "mul", "div", unary minus "neg"
    args: tuple[Arg, ...]
    line: int = field(default=0, compare=False, hash=False)  # where the parser found it
    col: int = field(default=0, compare=False, hash=False)  # column of the right-hand side

    def variables(self) -> tuple[str, ...]:
        return tuple(a for a in self.args if isinstance(a, str))

    def constants(self) -> tuple[float, ...]:
        return tuple(a for a in self.args if not isinstance(a, str))


@dataclass(frozen=True)
class Program:
    params: tuple[str, ...]  # w, g, slot..., lr
    statements: tuple[Statement, ...]
    returns: tuple[str, ...]  # update, then the new value of every slot
    name: str = field(default="train", compare=False)
    return_line: int = field(default=0, compare=False)
    return_col: int = field(default=0, compare=False)

    @property
    def weight(self) -> str:
        return self.params[0]

    @property
    def grad(self) -> str:
        return self.params[1]

    @property
    def slots(self) -> tuple[str, ...]:
        return self.params[2:-1]

    @property
    def lr(self) -> str:
        return self.params[-1]

    @property
    def n_slots(self) -> int:
        return len(self.params) - 3

    def replace_statements(self, statements) -> Program:
        return Program(self.params, tuple(statements), self.returns, self.name)

    def __len__(self) -> int:
        return len(self.statements)

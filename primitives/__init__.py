"""The program language: pool table, program model, parsing, analysis, hashing and codegen."""

from primitives.parser import parse
from primitives.printer import format_program
from primitives.program import Program, ProgramError, Statement

__all__ = ["Program", "ProgramError", "Statement", "format_program", "parse"]

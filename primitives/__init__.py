"""The program language: pool table, program model, parsing, analysis, hashing and codegen."""

from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.primitives.program import Program, ProgramError, Statement

__all__ = ["Program", "ProgramError", "Statement", "format_program", "parse"]

"""The reference programs shipped with the package (primitives/programs/*.py)."""

from __future__ import annotations

from importlib import resources

from optsearch.primitives.parser import parse
from optsearch.primitives.program import Program

REFERENCE_NAMES = ("adamw", "lion", "signum", "sgdm", "adam", "rmsprop", "adagrad", "adabelief",
                   "program4")


def reference_path(name: str):
    if name not in REFERENCE_NAMES:
        raise KeyError(f"unknown reference program '{name}' (known: {', '.join(REFERENCE_NAMES)})")
    return resources.files("optsearch.primitives") / "programs" / f"{name}.py"


def reference_text(name: str) -> str:
    return reference_path(name).read_text(encoding="utf-8")


def load_reference(name: str) -> Program:
    return parse(reference_text(name))

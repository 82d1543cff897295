"""Parse program text into a `Program` with `ast`, checking it against the grammar.

The text is never evaluated: `ast.parse` only builds a syntax tree, and every node is checked
against the small grammar of DESIGN.md §3 before anything else sees it.
"""

from __future__ import annotations

import ast
import keyword
import math
import re

from primitives.pool import INFIX_OPS, POOL
from primitives.program import Arg, Program, ProgramError, Statement

MAX_BYTES = 200_000  # a program is a few lines; anything larger is not one
MAX_STATEMENTS = 2_000
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
assert set(_BINOPS.values()) == set(INFIX_OPS.values())


def decode(data: bytes) -> str:
    """Decode program bytes as UTF-8, naming the line of the first invalid byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ProgramError("file is not valid UTF-8", line) from None


def parse(text: str) -> Program:
    """Parse and check the grammar, names and arity. Kinds are checked by analysis.check."""
    if len(text) > MAX_BYTES:
        raise ProgramError(f"program text is larger than {MAX_BYTES} bytes", 1)
    tree = _syntax_tree(text)
    func = _single_function(tree)
    params = _params(func)
    *body, last = func.body or [None]
    if not isinstance(last, ast.Return):
        raise ProgramError("the function must end with a return statement", _line(last or func))
    if len(body) > MAX_STATEMENTS:
        raise ProgramError(f"more than {MAX_STATEMENTS} statements", body[MAX_STATEMENTS].lineno)
    defined = set(params)
    statements = []
    for node in body:
        stmt = _statement(node)
        for var in stmt.variables():
            if var not in defined:
                raise ProgramError(f"variable '{var}' is read before it is assigned", stmt.line)
        defined.add(stmt.target)
        statements.append(stmt)
    returns = _returns(last, len(params) - 3, defined)
    return Program(params, tuple(statements), returns, func.name, last.lineno)


def _syntax_tree(text: str) -> ast.Module:
    try:
        return ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise ProgramError(f"syntax error: {exc.msg}", exc.lineno or 0, exc.offset or 0) from None
    except (RecursionError, MemoryError):
        raise ProgramError("expression nested too deeply", 1) from None
    except ValueError as exc:  # e.g. NUL bytes
        raise ProgramError(f"cannot parse: {exc}", 1) from None


def _line(node) -> int:
    return getattr(node, "lineno", 0)


def _single_function(tree: ast.Module) -> ast.FunctionDef:
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        bad = next((n for n in tree.body if not isinstance(n, ast.FunctionDef)), None)
        where = _line(bad) if bad else _line(tree.body[1]) if len(tree.body) > 1 else 1
        raise ProgramError("a program is exactly one 'def' and nothing else", where)
    func = tree.body[0]
    if func.decorator_list:
        raise ProgramError("decorators are not allowed", _line(func.decorator_list[0]))
    if func.returns is not None or getattr(func, "type_params", None):
        raise ProgramError("annotations and type parameters are not allowed", _line(func))
    _check_name(func.name, func)
    return func


def _params(func: ast.FunctionDef) -> tuple[str, ...]:
    a = func.args
    if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults or a.kw_defaults:
        raise ProgramError("parameters must be plain positional names: (w, g, *slots, lr)",
                           _line(func))
    names = [p.arg for p in a.args]
    for p in a.args:
        if p.annotation is not None:
            raise ProgramError("annotations are not allowed", _line(p))
        _check_name(p.arg, p)
    if len(names) < 3:
        raise ProgramError("signature must be (weight, gradient, *state_slots, lr)", _line(func))
    if len(set(names)) != len(names):
        raise ProgramError("duplicate parameter name", _line(func))
    return tuple(names)


def _check_name(name: str, node) -> None:
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ProgramError(f"invalid name '{name}' (letters, digits and _, not dunder)",
                           _line(node))
    if name in POOL:
        raise ProgramError(f"'{name}' is a function of the pool and cannot be a variable",
                           _line(node))


def _statement(node) -> Statement:
    if not isinstance(node, ast.Assign):
        kind = type(node).__name__.lower()
        raise ProgramError(f"only assignments are allowed in the body, not '{kind}'", _line(node))
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        raise ProgramError("assign to exactly one plain variable name", _line(node))
    target = node.targets[0].id
    _check_name(target, node)
    op, args = _expression(node.value)
    return Statement(target, op, args, node.lineno)


def _expression(node) -> tuple[str, tuple[Arg, ...]]:
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)], (_atom(node.left), _atom(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return "neg", (_atom(node.operand),)
    if isinstance(node, ast.Call):
        return _call(node)
    raise ProgramError("right-hand side must be f(a, ...), a + b, a - b, a * b, a / b or -a",
                       _line(node))


def _call(node: ast.Call) -> tuple[str, tuple[Arg, ...]]:
    if not isinstance(node.func, ast.Name):
        raise ProgramError("only functions of the pool can be called", _line(node))
    name = node.func.id
    if name not in POOL:
        raise ProgramError(f"unknown function '{name}'", _line(node))
    if node.keywords:
        raise ProgramError("keyword arguments are not allowed", _line(node))
    prim = POOL[name]
    if len(node.args) != prim.arity:
        raise ProgramError(f"{name}() takes {prim.arity} argument(s), got {len(node.args)}",
                           _line(node))
    return name, tuple(_atom(a) for a in node.args)


def _atom(node) -> Arg:
    if isinstance(node, ast.Name):
        if node.id in POOL:
            raise ProgramError(f"'{node.id}' is a function; call it as {node.id}(...)",
                               _line(node))
        return node.id
    negative = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    literal = node.operand if negative else node
    if isinstance(literal, ast.Constant) and type(literal.value) in (int, float):
        value = float(literal.value) if abs(literal.value) < 1e300 else math.inf
        if not math.isfinite(value):
            raise ProgramError("numeric constants must be finite and below 1e300", _line(node))
        return -value if negative else value
    raise ProgramError("arguments must be variable names or numeric constants "
                       "(no nested expressions, strings, attributes or subscripts)", _line(node))


def _returns(node: ast.Return, n_slots: int, defined: set[str]) -> tuple[str, ...]:
    value = node.value
    elts = value.elts if isinstance(value, ast.Tuple) else [value] if value is not None else []
    if len(elts) != n_slots + 1:
        raise ProgramError(f"return must give the update and {n_slots} state slot(s): "
                           f"{n_slots + 1} value(s), got {len(elts)}", _line(node))
    names = []
    for elt in elts:
        if not isinstance(elt, ast.Name):
            raise ProgramError("return values must be variable names", _line(node))
        if elt.id not in defined:
            raise ProgramError(f"variable '{elt.id}' is returned before it is assigned",
                               _line(node))
        names.append(elt.id)
    return tuple(names)

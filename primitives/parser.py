"""Parse program text into a `Program` with `ast`, checking it against the grammar.

The text is never evaluated: `ast.parse` only builds a syntax tree, and every node is checked
against the small program grammar (docs/primitives.md, "Programs") before anything else sees it. Every rejection is a
`ProgramError` with the 1-based line and column of the offending construct.
"""

from __future__ import annotations

import ast
import keyword
import math
import re

from optsearch.primitives.pool import INFIX_OPS, POOL
from optsearch.primitives.program import Arg, Program, ProgramError, Statement

MAX_BYTES = 200_000  # a program is a few lines; anything larger is not one
MAX_STATEMENTS = 2_000
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
assert set(_BINOPS.values()) == set(INFIX_OPS.values())
# What a rejected body statement is called in the error message (default: the node's name).
_STATEMENT_NAMES = {
    ast.Expr: "a bare expression (docstrings included)",
    ast.AugAssign: "an augmented assignment such as 'm += g' (write 'm = m + g')",
    ast.AnnAssign: "an annotated assignment",
    ast.Return: "a return before the end",
}
_OPERATOR_CHARS = frozenset("+-*/%@~([{<>=&|^")


def decode(data: bytes) -> str:
    """Decode program bytes as UTF-8 (a leading BOM is allowed), naming the line of a bad byte.

    The size limit is checked first: a reader that stops after MAX_BYTES + 1 bytes may cut a
    multi-byte character, and "too large" is then the error that helps.
    """
    if len(data) > MAX_BYTES:
        raise ProgramError(f"program text is larger than {MAX_BYTES} bytes", 1, 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ProgramError("file is not valid UTF-8", line, col) from None


def parse(text: str) -> Program:
    """Parse and check the grammar, names and arity. Kinds are checked by analysis.check."""
    if len(text) > MAX_BYTES:
        raise ProgramError(f"program text is larger than {MAX_BYTES} bytes", 1, 1)
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some editors write one
    if "\x00" in text:
        raise ProgramError("program text contains a NUL character", *_position(text, "\x00"))
    tree = _syntax_tree(text)
    func = _single_function(tree)
    params = _params(func)
    *body, last = func.body
    if not isinstance(last, ast.Return):
        raise ProgramError("the function must end with a return statement", *_at(last))
    if len(body) > MAX_STATEMENTS:
        raise ProgramError(f"more than {MAX_STATEMENTS} statements", *_at(body[MAX_STATEMENTS]))
    defined = set(params)
    statements = []
    for node in body:
        stmt = _statement(node)
        for var in stmt.variables():
            if var not in defined:
                raise ProgramError(f"variable '{var}' is read before it is assigned",
                                   *_at(_name_node(node.value, var)))
        defined.add(stmt.target)
        statements.append(stmt)
    returns = _returns(last, len(params) - 3, defined)
    return Program(params, tuple(statements), returns, func.name, last.lineno,
                   last.col_offset + 1)


def _at(node) -> tuple[int, int]:
    """1-based line and column of an ast node; (0, 0) when it has none."""
    line = getattr(node, "lineno", None) or 0
    col = getattr(node, "col_offset", None)
    return line, (col + 1 if line and col is not None else 0)


def _position(text: str, needle: str) -> tuple[int, int]:
    index = text.index(needle)
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def _name_node(node, name: str):
    return next((n for n in ast.walk(node) if isinstance(n, ast.Name) and n.id == name), node)


def _syntax_tree(text: str) -> ast.Module:
    try:
        return ast.parse(text, mode="exec")
    except SyntaxError as exc:
        msg = (exc.msg or "invalid syntax").splitlines()[0]
        raise ProgramError(f"syntax error: {msg}", exc.lineno or 1, exc.offset or 0) from None
    except (RecursionError, MemoryError):
        # CPython gives no position here; the line with the most operators is the culprit.
        raise ProgramError("expression nested too deeply", _busiest_line(text), 0) from None
    except ValueError as exc:
        raise ProgramError(f"cannot parse: {exc}", 1, 0) from None


def _busiest_line(text: str) -> int:
    counts = [sum(ch in _OPERATOR_CHARS for ch in line) + line.count("not ")
              for line in text.splitlines()]
    return 1 + max(range(len(counts)), key=counts.__getitem__) if counts else 1


def _single_function(tree: ast.Module) -> ast.FunctionDef:
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        bad = next((n for n in tree.body if not isinstance(n, ast.FunctionDef)), None)
        where = _at(bad) if bad else _at(tree.body[1]) if len(tree.body) > 1 else (1, 1)
        raise ProgramError("a program is exactly one 'def' and nothing else", *where)
    func = tree.body[0]
    if func.decorator_list:
        raise ProgramError("decorators are not allowed", *_at(func.decorator_list[0]))
    if func.returns is not None:
        raise ProgramError("annotations are not allowed", *_at(func.returns))
    if getattr(func, "type_params", None):
        raise ProgramError("type parameters are not allowed", *_at(func))
    _check_name(func.name, func)
    return func


def _params(func: ast.FunctionDef) -> tuple[str, ...]:
    a = func.args
    extra = a.posonlyargs + [a.vararg, a.kwarg] + a.kwonlyargs + a.defaults + a.kw_defaults
    bad = next((n for n in extra if n is not None), None)
    if bad is not None:
        raise ProgramError("parameters must be plain positional names: (w, g, *slots, lr)",
                           *_at(bad))
    for p in a.args:
        if p.annotation is not None:
            raise ProgramError("annotations are not allowed", *_at(p.annotation))
        _check_name(p.arg, p)
    names = [p.arg for p in a.args]
    if len(names) < 3:
        raise ProgramError("signature must be (weight, gradient, *state_slots, lr)", *_at(func))
    for k, p in enumerate(a.args):
        if p.arg in names[:k]:
            raise ProgramError(f"duplicate parameter name '{p.arg}'", *_at(p))
    return tuple(names)


def _check_name(name: str, node) -> None:
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ProgramError(f"invalid name '{name[:70]}' (ASCII letters, digits and _, starting "
                           "with a letter, at most 64 characters)", *_at(node))
    if name in POOL:
        raise ProgramError(f"'{name}' is a function of the pool and cannot be a variable",
                           *_at(node))


def _statement(node) -> Statement:
    if not isinstance(node, ast.Assign):
        kind = _STATEMENT_NAMES.get(type(node), f"'{type(node).__name__.lower()}'")
        raise ProgramError(f"only assignments are allowed in the body, not {kind}", *_at(node))
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        raise ProgramError("assign to exactly one plain variable name", *_at(node.targets[-1]))
    target = node.targets[0].id
    _check_name(target, node.targets[0])
    op, args = _expression(node.value)
    line, col = _at(node.value)
    return Statement(target, op, args, node.lineno, col if line == node.lineno else 0)


def _expression(node) -> tuple[str, tuple[Arg, ...]]:
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)], (_atom(node.left), _atom(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return "neg", (_atom(node.operand),)
    if isinstance(node, ast.Call):
        return _call(node)
    raise ProgramError("right-hand side must be f(a, ...), a + b, a - b, a * b, a / b or -a",
                       *_at(node))


def _call(node: ast.Call) -> tuple[str, tuple[Arg, ...]]:
    if not isinstance(node.func, ast.Name):
        raise ProgramError("only functions of the pool can be called", *_at(node.func))
    name = node.func.id
    if name not in POOL:
        raise ProgramError(f"unknown function '{name[:70]}'", *_at(node.func))
    if node.keywords:
        raise ProgramError("keyword arguments are not allowed", *_at(node.keywords[0]))
    prim = POOL[name]
    if len(node.args) != prim.arity:
        raise ProgramError(f"{name}() takes {prim.arity} argument(s), got {len(node.args)}",
                           *_at(node))
    return name, tuple(_atom(a) for a in node.args)


def _atom(node) -> Arg:
    if isinstance(node, ast.Name):
        if node.id in POOL:
            raise ProgramError(f"'{node.id}' is a function; call it as {node.id}(...)",
                               *_at(node))
        return node.id
    negative = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    literal = node.operand if negative else node
    if isinstance(literal, ast.Constant) and type(literal.value) in (int, float):
        value = float(literal.value) if abs(literal.value) < 1e300 else math.inf
        if not math.isfinite(value):
            raise ProgramError("numeric constants must be finite and below 1e300", *_at(node))
        return -value if negative else value
    raise ProgramError("arguments must be variable names or numeric constants "
                       "(no nested expressions, strings, attributes or subscripts)", *_at(node))


def _returns(node: ast.Return, n_slots: int, defined: set[str]) -> tuple[str, ...]:
    value = node.value
    elts = value.elts if isinstance(value, ast.Tuple) else [value] if value is not None else []
    if len(elts) != n_slots + 1:
        raise ProgramError(f"return must give the update and {n_slots} state slot(s): "
                           f"{n_slots + 1} value(s), got {len(elts)}", *_at(node))
    names = []
    for elt in elts:
        if not isinstance(elt, ast.Name):
            raise ProgramError("return values must be variable names", *_at(elt))
        if elt.id not in defined:
            raise ProgramError(f"variable '{elt.id}' is returned before it is assigned",
                               *_at(elt))
        names.append(elt.id)
    return tuple(names)

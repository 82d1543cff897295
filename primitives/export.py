"""Export a program as one standalone `torch.optim.Optimizer` file that depends only on torch.

The source is generated from the checked `Program` model only (pool names, identifiers from the
model, `repr` of floats), never from user text. Only live statements and live state slots make
it into the file (`primitives.liveness`).

Hyperparameters. With a `Recognition` (duck-typed: `name`, `hyperparameters`, `program`,
`bindings: {(statement index, arg position): name}`) its template program is exported and the
bound constants become named hyperparameters (`lr`, `betas=(beta1, beta2)`, `weight_decay`,
...). When `lr` is bound, the program's lr *input* (the schedule value) is 1 and the group's
`lr` is the real learning rate a scheduler changes. Without a recognition every constant becomes
a numbered hyperparameter `c0, c1, ...` (discovered values as defaults) and the group's `lr` is
the program's lr input: a multiplier, default 1.0, so a scheduler scales the discovered
schedule (`lr = lr * 0.0002` stays inside the program as `lr * c5`).

Speed. Values are classified as parameter-shaped tensors (T), per-parameter scalars (P: 0-d
tensors from reductions and from *uniform* state slots such as Adam's step counter, stored 0-d),
and group scalars (G: Python numbers, or 0-d tensors under torch.compile). A planner writes each
tensor result into a dead temporary or state buffer in place when it can, and recognises the
final `w -= (x + w * wd) * lr` (decoupled weight decay) and `w -= x * lr`, so exported Lion makes
as few passes over memory as a hand-written one.
"""

from __future__ import annotations

import keyword
import math
import re
import textwrap
from dataclasses import dataclass, field

import networkx as nx
import sympy
import torch

from optsearch.primitives.analysis import G, P, T, check, value_kinds
from optsearch.primitives.dataflow import build_graph, definitions, slot_input
from optsearch.primitives.export_template import (
    FOREACH,
    FOREACH_INPLACE,
    INPLACE,
    PY_ARITH,
    SINGLE,
    TENSOR_POS,
)
from optsearch.primitives.liveness import live_indices, live_state_slots
from optsearch.primitives.pool import POOL
from optsearch.primitives.program import Program
from optsearch.primitives.symbolic import live_expressions

RESERVED = frozenset({"params", "maximize", "foreach", "state_dtype", "self", "torch"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # the parser's rule: ASCII names only


@dataclass
class Hyper:
    """One scalar hyperparameter: its name in the group and its default (the discovered value)."""
    name: str
    default: float
    rule: str  # "lr" | "unit" (0 <= x < 1) | "nonneg" | "finite"


@dataclass
class Spec:
    program: Program
    live: frozenset[int]
    hypers: list[Hyper]
    const_expr: dict[tuple[int, int], str]  # (statement, arg position) -> code for a constant
    lr_input: str  # code for the program's lr input: "h_lr" (group lr) or "1.0"
    betas: bool  # beta1 and beta2 travel together as `betas`
    recognized: str | None = None


@dataclass
class Val:
    kind: str  # T, P or G
    expr: str  # variable name or literal in the generated code
    num: bool = False  # G only: a Python number in eager mode
    storage: object = None  # T only: "p", "g", ("slot", k) or ("tmp", i)


# ----------------------------------------------------------------------------- hyperparameters

def _rule(name: str, default: float) -> str:
    if name == "lr":
        return "lr"
    rules = {"weight_decay": "nonneg", "eps": "nonneg"}
    rule = "unit" if name.startswith("beta") or name in ("momentum", "alpha", "rho") else \
        rules.get(name, "finite")
    ok = {"unit": 0.0 <= default < 1.0, "nonneg": default >= 0.0}.get(rule, True)
    return rule if ok else "finite"  # never reject the discovered value itself


def _check_name(name: str) -> None:
    if not _is_identifier(name) or name in RESERVED:
        raise ValueError(f"hyperparameter name {name!r} is not usable in the exported class")


def _is_identifier(name) -> bool:
    return isinstance(name, str) and bool(_IDENTIFIER.match(name)) and not keyword.iskeyword(name)


def _finite(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not a finite number")
    return float(value)


def check_model(program: Program) -> None:
    """The checks the parser makes, for a Program built in code (mutations, recognition): the
    file only ever holds validated identifiers, pool names and `repr` of finite floats."""
    if len(program.params) < 3 or len(program.returns) != program.n_slots + 1:
        raise ValueError("a program takes (w, g, *slots, lr) and returns (update, *slots)")
    names = [*program.params, *program.returns, *(s.target for s in program.statements)]
    for stmt in program.statements:
        where = f"line {stmt.line}: " if stmt.line else ""
        if stmt.op not in POOL:
            raise ValueError(f"{where}{stmt.op!r} is not a pool function")
        if len(stmt.args) != POOL[stmt.op].arity:
            raise ValueError(f"{where}{stmt.op} takes {POOL[stmt.op].arity} argument(s)")
        names += [a for a in stmt.args if isinstance(a, str)]
        for a in stmt.args:
            if not isinstance(a, str):
                _finite(a, f"{where}constant")
    bad = next((n for n in names if not _is_identifier(n)), None)
    if bad is not None:
        raise ValueError(f"{bad!r} is not a valid program identifier")
    check(program)


def make_spec(program: Program, recognition=None) -> Spec:
    """Decide which program is exported and what every constant becomes."""
    if recognition is not None and recognition.bindings and recognition.name != "new":
        return _recognized_spec(recognition)
    check_model(program)
    live = live_indices(program)
    const_expr, hypers = {}, [Hyper("lr", 1.0, "lr")]
    for i in sorted(live):
        for pos, arg in enumerate(program.statements[i].args):
            if not isinstance(arg, str):
                name = f"c{len(hypers) - 1}"
                hypers.append(Hyper(name, float(arg), "finite"))
                const_expr[(i, pos)] = f"h_{name}"
    return Spec(program, live, hypers, const_expr, "h_lr", betas=False)


def _recognized_spec(rec) -> Spec:
    program = rec.program
    check_model(program)
    live = live_indices(program)
    const_expr, defaults = {}, {}
    for i in sorted(live):
        for pos, arg in enumerate(program.statements[i].args):
            if isinstance(arg, str):
                continue
            name = rec.bindings.get((i, pos))
            if name is None:
                const_expr[(i, pos)] = repr(float(arg))
                continue
            _check_name(name)
            defaults.setdefault(name, _finite(rec.hyperparameters.get(name, arg),
                                              f"hyperparameter {name}:"))
            const_expr[(i, pos)] = f"h_{name}"
    lr_bound = "lr" in defaults
    if not lr_bound:
        defaults = {"lr": 1.0, **defaults}
    order = sorted(defaults, key=lambda n: (n != "lr", not n.startswith("beta"), n == "weight_decay"))
    hypers = [Hyper(n, defaults[n], _rule(n, defaults[n])) for n in order]
    betas = "beta1" in defaults and "beta2" in defaults
    return Spec(program, live, hypers, const_expr, "1.0" if lr_bound else "h_lr", betas,
                recognized=rec.name)


# ----------------------------------------------------------------------------- kinds

def _uniform_sources(graph, spec: Spec, node, uniform) -> set[int]:
    """The uniform slots whose input reaches `node`."""
    reach = nx.ancestors(graph, node) | {node}
    return {k for k in uniform if slot_input(spec.program, k) in reach}


def _needs_tensor(spec: Spec, graph, uniform: set[int]):
    """Kinds with these slots uniform, and the uniform slots that something needs as a tensor:
    a tensor-only argument, the update, or a new slot value that is a tensor."""
    values = value_kinds(spec.program, uniform)
    kinds = values.by_node()
    *stmt_reads, (_, returns) = definitions(spec.program)
    culprits = [stmt_reads[i][1][pos] for i, pos in values.mismatches if i in spec.live]
    if kinds[returns[0]] != T:  # the update must stay a tensor: its slots are not uniform
        culprits.append(returns[0])
    bad = set().union(*(_uniform_sources(graph, spec, n, uniform) for n in culprits))
    bad |= {k for k in uniform if kinds[returns[1 + k]] == T}
    return kinds, returns, bad


def infer_kinds(spec: Spec):
    """Fixed point: a live slot is uniform (0-d state) unless something needs it as a tensor."""
    uniform = set(live_state_slots(spec.program))
    graph = build_graph(spec.program)
    while True:
        kinds, returns, bad = _needs_tensor(spec, graph, uniform)
        if not bad & uniform:
            return kinds, returns, frozenset(uniform)
        uniform -= bad


# ----------------------------------------------------------------------------- plan

@dataclass
class Plan:
    kinds: dict
    reads: dict  # live statement -> SSA reads; constants are ("const", i, pos)
    returns: list
    uniform: frozenset[int]
    slots: tuple[int, ...]  # live state slots, in parameter order
    final: tuple  # ("dwd", b, s, c) | ("scale", a, s) | ("sub", u)
    elided: frozenset[int]
    last_use: dict = field(default_factory=dict)


def _ssa_reads(spec: Spec):
    out = {}
    for node, reads in definitions(spec.program):
        if node == "returns":
            return out, list(reads)
        i = node[1]
        if i in spec.live:
            out[i] = [r if r is not None else ("const", i, pos) for pos, r in enumerate(reads)]


def _uses(plan: Plan, n: int, elided=frozenset()) -> dict:
    uses: dict = {}
    for i, reads in plan.reads.items():
        for r in reads:
            uses.setdefault(r, []).append(n if i in elided else i)
    if plan.final[0] == "sub":
        uses.setdefault(plan.returns[0], []).append(n)
    for k in plan.slots:
        uses.setdefault(plan.returns[1 + k], []).append(n + 1)
    return uses


def make_plan(spec: Spec) -> Plan:
    kinds, returns, uniform = infer_kinds(spec)
    reads, _ = _ssa_reads(spec)
    for rs in reads.values():
        for r in rs:
            kinds.setdefault(r, G)  # constants
    slots = tuple(sorted(live_state_slots(spec.program)))
    plan = Plan(kinds, reads, returns, uniform, slots, ("sub", returns[0]), frozenset())
    n = len(spec.program.statements)
    plan.final, plan.elided = _final_step(spec, plan, _uses(plan, n))
    plan.last_use = {v: max(sites) for v, sites in _uses(plan, n, plan.elided).items()}
    return plan


def _final_step(spec: Spec, plan: Plan, uses: dict):
    """Recognise `w -= (x + w * c) * s` and `w -= x * s`: fused into p.mul_ / p.add_(alpha)."""
    stmts, kinds, n = spec.program.statements, plan.kinds, len(spec.program.statements)
    u = plan.returns[0]
    scalar = (G, P)
    if u[0] != "stmt" or stmts[u[1]].op != "mul" or uses.get(u) != [n]:
        return ("sub", u), frozenset()
    i = u[1]
    for a, s in (plan.reads[i], plan.reads[i][::-1]):
        if kinds[a] != T or kinds[s] not in scalar:
            continue
        if a[0] == "stmt" and stmts[a[1]].op == "add" and uses.get(a) == [i]:
            j = a[1]
            for d, b in (plan.reads[j], plan.reads[j][::-1]):
                if d[0] != "stmt" or stmts[d[1]].op != "mul" or uses.get(d) != [j]:
                    continue
                k = d[1]
                for w, c in (plan.reads[k], plan.reads[k][::-1]):
                    if w == ("in", 0) and kinds[c] in scalar and kinds[b] == T:
                        return ("dwd", b, s, c), frozenset({i, j, k})
        return ("scale", a, s), frozenset({i})
    return ("sub", u), frozenset()


# ----------------------------------------------------------------------------- emission

_FOREACH_NAME = re.compile(r"torch\.(_foreach_\w+)")


def foreach_names(template: str) -> set[str]:
    return set(_FOREACH_NAME.findall(template))


def _available(template: str) -> bool:
    return all(hasattr(torch, name) for name in foreach_names(template))


class Emitter:
    """Body of `_update_single(p, g, st, *h)` or `_update_foreach(ps, gs, st, *h)`."""

    def __init__(self, spec: Spec, plan: Plan, foreach: bool):
        self.spec, self.plan, self.foreach = spec, plan, foreach
        self.p, self.g = ("ps", "gs") if foreach else ("p", "g")
        self.ref = "ps[0]" if foreach else "p"
        self.lines: list[str] = []
        self.used_foreach: set[str] = set()
        self.vals: dict = {}

    def emit(self) -> list[str]:
        self._inputs()
        for i in sorted(self.plan.reads):
            if i not in self.plan.elided:
                self._statement(i)
        # A slot that keeps the weight itself must read it before the weight update.
        keep = {k: self._clone(self.vals[self.plan.returns[1 + k]]) for k in self.plan.slots
                if self.vals[self.plan.returns[1 + k]].storage == "p"}
        self._final()
        self._moves(keep)
        return self.lines

    def _inputs(self) -> None:
        prog, plan = self.spec.program, self.plan
        self.vals[("in", 0)] = Val(T, self.p, storage="p")
        self.vals[("in", 1)] = Val(T, self.g, storage="g")
        self.vals[("in", len(prog.params) - 1)] = Val(G, self.spec.lr_input, num=True)
        for j, k in enumerate(plan.slots):  # st[j]: the j-th live slot's state tensor(s)
            kind = P if k in plan.uniform else T
            self.vals[("in", 2 + k)] = Val(kind, f"s{k}", storage=("slot", k))
            # State kept in another dtype (state_dtype) is computed in the parameter dtype.
            if self.foreach:
                self.lines.append(f"s{k} = st[{j}] if st[{j}][0].dtype == ps[0].dtype "
                                  f"else [x.to(ps[0].dtype) for x in st[{j}]]")
            else:
                self.lines.append(f"s{k} = st[{j}] if st[{j}].dtype == p.dtype "
                                  f"else st[{j}].to(p.dtype)")
        for reads in plan.reads.values():
            for r in reads:
                if r[0] == "const":
                    self.vals[r] = Val(G, self.spec.const_expr[(r[1], r[2])], num=True)

    def _statement(self, i: int) -> None:
        stmt = self.spec.program.statements[i]
        reads = self.plan.reads[i]
        args = [self.vals[r] for r in reads]
        kind, node = self.plan.kinds[("stmt", i)], ("stmt", i)
        if kind == G:
            self.vals[node] = self._group_scalar(i, stmt.op, args)
        elif not (kind == T and self._inplace(i, stmt.op, reads, args)):
            self.lines.append(f"t{i} = {self._fresh(stmt.op, args)}")
            self.vals[node] = Val(kind, f"t{i}", storage=("tmp", i) if kind == T else None)

    def _group_scalar(self, i: int, op: str, args: list[Val]) -> Val:
        """A value shared by every parameter of the group (hyperparameters, lr, constants)."""
        if POOL[op].arity == 0:
            return Val(G, SINGLE[op], num=True)
        if op == "mul" and any(a.expr == "1.0" for a in args):  # x * 1.0 is exactly x
            other = args[1] if args[0].expr == "1.0" else args[0]
            return other
        if op in PY_ARITH and all(a.num for a in args):
            self.lines.append(f"t{i} = {SINGLE[op].format(*(a.expr for a in args))}")
            return Val(G, f"t{i}", num=True)
        wrapped = [f"_t({a.expr}, {self.ref})" for a in args]
        self.lines.append(f"t{i} = {SINGLE[op].format(*wrapped)}")
        return Val(G, f"t{i}", num=False)

    def _single_args(self, op: str, args: list[Val], like: str) -> list[str]:
        tensor_pos = TENSOR_POS.get(op, ())
        return [f"_t({a.expr}, {like})" if a.kind == G and pos in tensor_pos else a.expr
                for pos, a in enumerate(args)]

    def _sig(self, args: list[Val]) -> str | None:
        """Foreach signature (L list, S number), or None when only a comprehension will do."""
        list_kinds = {a.kind for a in args if a.kind != G}
        if len(list_kinds) > 1 or any(a.kind == G and not a.num for a in args):
            return None  # mixed tensor / per-parameter-scalar lists, or a 0-d tensor scalar
        return "".join("S" if a.kind == G else "L" for a in args)

    def _native(self, template: str | None) -> str | None:
        if template is None or not _available(template):
            return None
        self.used_foreach |= foreach_names(template)
        return template

    def _fresh(self, op: str, args: list[Val]) -> str:
        if not self.foreach:
            return SINGLE[op].format(*self._single_args(op, args, "p"))
        sig = self._sig(args)
        native = self._native(FOREACH.get((op, sig))) if sig else None
        if native:
            return native.format(*(a.expr for a in args))
        return self._comprehension(op, args)

    def _comprehension(self, op: str, args: list[Val]) -> str:
        lists = [pos for pos, a in enumerate(args) if a.kind != G]
        loop = {pos: f"_x{pos}" for pos in lists}
        like = loop[lists[0]]
        inner_args = [Val(a.kind, loop.get(pos, a.expr)) for pos, a in enumerate(args)]
        inner = SINGLE[op].format(*self._single_args(op, inner_args, like))
        if len(lists) == 1:
            return f"[{inner} for {like} in {args[lists[0]].expr}]"
        names = ", ".join(loop.values())
        sources = ", ".join(args[pos].expr for pos in lists)
        return f"[{inner} for {names} in zip({sources})]"

    # -- in place: write a result into a dead temporary or state buffer (no allocation) --

    def _inplace(self, i: int, op: str, reads: list, args: list[Val]) -> bool:
        node = ("stmt", i)
        own_slots = {("slot", k) for k in self.plan.slots if self.plan.returns[1 + k] == node}
        candidates = []
        for pos, (r, a) in enumerate(zip(reads, args)):
            mutable = isinstance(a.storage, tuple) and self.plan.last_use.get(r) == i
            if a.kind == T and mutable:
                rank = 0 if a.storage in own_slots else (1 if a.storage[0] == "tmp" else 2)
                candidates.append((rank, pos))
        for _, pos in sorted(candidates):
            template = self._inplace_template(op, pos, args)
            if template:
                self.lines.extend(template.split("\n"))
                self.vals[node] = Val(T, args[pos].expr, storage=args[pos].storage)
                return True
        return False

    def _inplace_template(self, op: str, pos: int, args: list[Val]) -> str | None:
        if not self.foreach:
            template = INPLACE.get((op, pos))
            return template and template.format(*self._single_args(op, args, "p"))
        sig = self._sig(args)
        native = self._native(FOREACH_INPLACE.get((op, sig, pos))) if sig else None
        return native and native.format(*(a.expr for a in args))

    # -- the weight update, then the new state --

    def _final(self) -> None:
        kind, *nodes = self.plan.final
        v = [self.vals[n] for n in nodes]
        if kind == "dwd":  # w - (x + w * c) * s  ==  w * (1 - s * c) - s * x
            b, s, c = v
            self._apply(["{p}.mul_(1 - {s} * {c})", "_axpy_({p}, {b}, -{s})"],
                        [f"torch._foreach_mul_({self.p}, 1 - {s.expr} * {c.expr})",
                         f"_foreach_axpy_({self.p}, {b.expr}, -{s.expr})"], b=b, s=s, c=c)
        elif kind == "scale":  # w - x * s
            a, s = v
            self._apply(["_axpy_({p}, {a}, -{s})"],
                        [f"_foreach_axpy_({self.p}, {a.expr}, -{s.expr})"], a=a, s=s)
        else:
            (u,) = v
            self._apply(["{p}.sub_({u})"], [f"torch._foreach_sub_({self.p}, {u.expr})"], u=u)

    def _apply(self, single: list[str], foreach: list[str], **vals: Val) -> None:
        """Emit single-tensor lines, or foreach lines -- or a loop when per-parameter scalars
        or 0-d tensor scalars are involved (the foreach scalar overloads want numbers)."""
        if not self.foreach:
            names = {"p": "p", **{k: v.expr for k, v in vals.items()}}
            self.lines.extend(line.format(**names) for line in single)
            return
        if all(v.kind == T or (v.kind == G and v.num) for v in vals.values()):
            self.used_foreach.update({"_foreach_mul_", "_foreach_add_", "_foreach_sub_",
                                      "_foreach_mul"})
            self.lines.extend(foreach)
            return
        lists = {k: v for k, v in vals.items() if v.kind != G}
        names = {"p": "_p", **{k: (f"_{k}" if k in lists else v.expr) for k, v in vals.items()}}
        sources = ", ".join([self.p] + [v.expr for v in lists.values()])
        targets = ", ".join(["_p"] + [f"_{k}" for k in lists])
        self.lines.append(f"for {targets} in zip({sources}):")
        self.lines.extend("    " + line.format(**names) for line in single)

    def _moves(self, keep: dict) -> None:
        """Copy each slot's new value into its buffer, ordering copies so none clobbers a
        value another copy still needs (a copy into slot k overwrites storage ("slot", k))."""
        pending = []
        for k in self.plan.slots:
            v = keep.get(k) or self.vals[self.plan.returns[1 + k]]
            j = self.plan.slots.index(k)
            if v.storage == ("slot", k):
                copy = (f"torch._foreach_copy_(st[{j}], s{k})" if self.foreach
                        else f"st[{j}].copy_(s{k})")
                self.lines.append(f"if s{k} is not st[{j}]:")
                self.lines.append(f"    {copy}")
                if self.foreach:
                    self.used_foreach.add("_foreach_copy_")
            else:
                pending.append((k, v))
        while pending:
            ready = [(k, v) for k, v in pending
                     if all(w.storage != ("slot", k) for j, w in pending if j != k)]
            if not ready:  # a cycle of slot buffers: copy out the value about to be overwritten
                k = pending[0][0]
                pending = [(j, self._clone(w) if w.storage == ("slot", k) else w)
                           for j, w in pending]
                continue
            k, v = ready[0]
            pending = [(j, w) for j, w in pending if j != k]
            self._copy_into(k, v)

    def _clone(self, v: Val) -> Val:
        clone = f"[x.clone() for x in {v.expr}]" if self.foreach else f"{v.expr}.clone()"
        name = f"{v.expr}_c{len(self.lines)}"
        self.lines.append(f"{name} = {clone}")
        return Val(v.kind, name, storage=("tmp", -1))

    def _copy_into(self, k: int, v: Val) -> None:
        same_kind = (k in self.plan.uniform) == (v.kind == P)
        k = self.plan.slots.index(k)  # position in st
        if not self.foreach:
            self.lines.append(f"st[{k}].copy_({v.expr})")
        elif same_kind:
            self.used_foreach.add("_foreach_copy_")
            self.lines.append(f"torch._foreach_copy_(st[{k}], {v.expr})")
        else:
            self.lines.append(f"for _d, _v in zip(st[{k}], {v.expr}):")
            self.lines.append("    _d.copy_(_v)")


# ----------------------------------------------------------------------------- docstring

def _shown_constant(code: str):
    """A constant as the docstring shows it: a hyperparameter's name, else 6 digits."""
    if code.startswith("h_"):
        return sympy.Symbol(code[2:])
    value = float(code)
    return sympy.Integer(int(value)) if value.is_integer() else sympy.Float(value, 6)


def equations(spec: Spec, plan: Plan) -> list[str]:
    """`update = ...` and `slot <- ...` in closed form over the inputs and hyperparameters."""
    prog = spec.program
    symbols = {name: sympy.Symbol(name) for name in prog.params}
    symbols[prog.lr] = sympy.Symbol("lr") if spec.lr_input == "h_lr" else sympy.Integer(1)
    env, returns = live_expressions(
        prog, symbols, literal=lambda i, pos, _: _shown_constant(spec.const_expr[(i, pos)]),
        function=sympy.Function)
    out = [f"update = {sympy.sstr(env[returns[0]])}"]
    out += [f"{prog.slots[k]} <- {sympy.sstr(env[returns[1 + k]])}" for k in plan.slots]
    if any(len(line) > 300 for line in out):
        return ["(too long to show in closed form: see the program above)"]
    return out + [f"{prog.weight} <- {prog.weight} - update"]


def _arg_docs(spec: Spec, args) -> list[str]:
    where: dict[str, list[int]] = {}
    for (i, _), code in sorted(spec.const_expr.items()):
        if code.startswith("h_"):
            where.setdefault(code[2:], []).append(i + 1)
    docs = []
    for name, default, members in args:
        if name == "lr" and spec.lr_input == "h_lr":
            what = ("multiplier of the program's learning-rate schedule input (the discovered "
                    "peak learning rate is a constant of the program); a float or a 0-d tensor")
        elif name == "lr":
            what = "learning rate; a float or a 0-d tensor (see torch.compile above)"
        else:
            lines = sorted({n for m in members for n in where.get(m, [])})
            what = f"constant of program line(s) {', '.join(map(str, lines))}"
        docs += textwrap.wrap(f"{name}: {what} (default {default}).", 92,
                              initial_indent=" " * 8, subsequent_indent=" " * 12)
    return docs


def describe(spec: Spec, plan: Plan, class_name: str, args) -> tuple[str, str, str]:
    """(module docstring, one-line class summary, constructor argument docs)."""
    from optsearch.primitives.liveness import live_program
    from optsearch.primitives.printer import format_program

    what = (f"the {spec.recognized} update rule, recognised in a searched program"
            if spec.recognized else "an optimizer discovered by program search")
    short = f"{class_name}: {what}, exported by optsearch."
    program_text = format_program(live_program(spec.program)).rstrip().replace("\n", "\n    ")
    slots = [f"{spec.program.slots[k]}" + (" (0-d, uniform)" if k in plan.uniform else "")
             for k in plan.slots]
    lr_note = ("`lr` is the real learning rate (it replaces the program's peak-lr constant)."
               if spec.lr_input == "1.0" else
               "`lr` multiplies the program's lr input (default 1.0 = the discovered schedule "
               "value); schedulers scale it.")
    doc = "\n".join([
        short, "",
        "Program (its live part; runs once per parameter tensor and step, then w <- w - update):",
        "", "    " + program_text, "",
        "Update equations (element-wise; norm/mean/dot/cosine_sim reduce over one parameter",
        "tensor; the 1e-08 guards of division and logarithms are not shown):", "",
        *("    " + line for line in equations(spec, plan)), "",
        "Defaults: " + ", ".join(f"{n}={d}" for n, d, _ in args) + ".",
        *textwrap.wrap(lr_note, 92),
        f"State per parameter: {', '.join(slots) or 'none'} (created lazily with zeros).",
        "torch.compile: pass lr as a 0-d tensor, e.g. lr=torch.tensor(1e-3); schedulers fill",
        "it in place, the compiled step reads it as a graph input and does not recompile.",
        "Depends only on torch. Generated code: edit the program, not this file.",
    ])
    return doc, short, "\n".join(_arg_docs(spec, args))


# ----------------------------------------------------------------------------- the file

def _signature(spec: Spec) -> list[tuple[str, str, list[str]]]:
    """Constructor arguments as (name, default code, member hyperparameters); `betas` groups
    beta1 and beta2 the way torch.optim does."""
    args, used = [], set()
    for h in spec.hypers:
        if h.name in used:
            continue
        if spec.betas and h.name in ("beta1", "beta2"):
            b = {x.name: x.default for x in spec.hypers}
            args.append(("betas", f"({b['beta1']!r}, {b['beta2']!r})", ["beta1", "beta2"]))
            used |= {"beta1", "beta2"}
        else:
            args.append((h.name, repr(h.default), [h.name]))
            used.add(h.name)
    return args


def _hyper_body(spec: Spec, args) -> list[str]:
    lines = []
    for name, _, members in args:
        if len(members) > 1:
            lines.append(f"{', '.join('h_' + m for m in members)} = group[{name!r}]")
        elif name == "lr":
            lines.append("h_lr = _scalar(group['lr'])")
        else:
            lines.append(f"h_{name} = group[{name!r}]")
    lines.append(f"return ({', '.join('h_' + h.name for h in spec.hypers)},)")
    return lines


def _check_body(spec: Spec, args) -> list[str]:
    rules = {h.name: h.rule for h in spec.hypers}
    lines = ["_check_number('lr', lr, 'lr')"]
    for name, _, members in args:
        if len(members) > 1:
            lines.append(f"if not isinstance(group[{name!r}], (tuple, list)) or "
                         f"len(group[{name!r}]) != {len(members)}:")
            lines.append(f'    raise ValueError(f"Invalid {name}: {{group[{name!r}]!r}}")')
            lines += [f"_check_number({m!r}, group[{name!r}][{j}], {rules[m]!r})"
                      for j, m in enumerate(members)]
        elif name != "lr":
            lines.append(f"_check_number({name!r}, group[{name!r}], {rules[name]!r})")
    return lines


def _doc_text(text: str) -> str:
    """Text that stays inside a triple-quoted docstring whatever it holds (a recogniser's name,
    sympy output): backslashes and quotes escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _elementwise(spec: Spec, plan: Plan) -> bool:
    """True when every element's update depends only on that element: no live reduction and
    no uniform slot (a chunked call would advance e.g. a step counter once per chunk)."""
    reduces = any(POOL[spec.program.statements[i].op].reduces for i in plan.reads)
    return not reduces and not (plan.uniform & set(plan.slots))


def _indent(lines: list[str], depth: int = 1) -> str:
    return "\n".join("    " * depth + line for line in lines)


def export_source(program: Program, class_name: str = "DiscoveredOptimizer",
                  recognition=None) -> str:
    """The text of one `.py` file defining `class_name`, a torch.optim.Optimizer subclass."""
    from string import Template

    from optsearch.primitives.export_template import FILE_TEMPLATE, HELPERS

    if not (class_name.isidentifier() and not keyword.iskeyword(class_name)
            and not class_name.startswith("_") and class_name not in RESERVED | {"math"}):
        raise ValueError(f"class name {class_name!r} is not a usable Python identifier")
    spec = make_spec(program, recognition)
    plan = make_plan(spec)
    single, fe = Emitter(spec, plan, foreach=False), Emitter(spec, plan, foreach=True)
    single_body, foreach_body = single.emit(), fe.emit()
    args = _signature(spec)
    slots = tuple((spec.program.slots[k], k in plan.uniform) for k in plan.slots)
    doc, short, args_doc = describe(spec, plan, class_name, args)
    return Template(FILE_TEMPLATE).substitute(
        docstring=_doc_text(doc), short_doc=_doc_text(short), class_name=class_name,
        args_doc=_doc_text(args_doc),
        slots=repr(slots), chunkable=repr(_elementwise(spec, plan)),
        foreach_ops="(\n" + "".join(f"    {name!r},\n" for name in
                                    sorted(fe.used_foreach | {"_foreach_neg"})) + ")",
        helpers=HELPERS, check_body=_indent(_check_body(spec, args)),
        hyper_body=_indent(_hyper_body(spec, args)),
        hparams=", ".join("h_" + h.name for h in spec.hypers),
        single_body=_indent(single_body), foreach_body=_indent(foreach_body),
        init_sig=", ".join(f"{name}={default}" for name, default, _ in args),
        defaults_body=", ".join(f"{name}={name}" for name, _, _ in args))

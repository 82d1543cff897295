"""The bodies of the two update functions of the exported file: `_update_single(p, g, st, *h)`
(one parameter tensor) and `_update_foreach(ps, gs, st, *h)` (lists of tensors, through
`torch._foreach_*` where it has the op, else list comprehensions).

Both walk the plan the same way (`Emitter`): inputs, live statements in order (each tensor
result written in place into a dead buffer when a template allows it), the fused weight update,
then the copies of the new state into its buffers. The subclasses say how one step is spelled.
"""

from __future__ import annotations

from dataclasses import dataclass

from optsearch.primitives.analysis import G, P, T
from optsearch.primitives.export.ops import (
    FOREACH,
    FOREACH_INPLACE,
    INPLACE,
    PY_ARITH,
    SINGLE,
    TENSOR_POS,
    available,
    foreach_names,
)
from optsearch.primitives.export.plan import Plan
from optsearch.primitives.export.spec import Spec
from optsearch.primitives.pool import POOL


@dataclass
class Val:
    kind: str  # T, P or G
    expr: str  # variable name or literal in the generated code
    num: bool = False  # G only: a Python number in eager mode
    storage: object = None  # T only: "p", "g", ("slot", k) or ("tmp", i)


class Emitter:
    """The walk shared by both update functions. Subclasses spell each step: `_load_state`,
    `_fresh`, `_inplace_template`, `_apply`, `_store_back`, `_clone_expr`, `_copy_into`."""

    p = g = ref = ""  # names of the weight(s), the gradient(s), and a tensor to take dtypes from

    def __init__(self, spec: Spec, plan: Plan):
        self.spec, self.plan = spec, plan
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
            self.lines.append(self._load_state(j, k))
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

    def _moves(self, keep: dict) -> None:
        """Copy each slot's new value into its buffer, ordering copies so none clobbers a
        value another copy still needs (a copy into slot k overwrites storage ("slot", k))."""
        pending = []
        for k in self.plan.slots:
            v = keep.get(k) or self.vals[self.plan.returns[1 + k]]
            j = self.plan.slots.index(k)
            if v.storage == ("slot", k):
                self.lines.append(f"if s{k} is not st[{j}]:")
                self.lines.append(f"    {self._store_back(j, k)}")
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
        name = f"{v.expr}_c{len(self.lines)}"
        self.lines.append(f"{name} = {self._clone_expr(v.expr)}")
        return Val(v.kind, name, storage=("tmp", -1))


class SingleEmitter(Emitter):
    """Body of `_update_single(p, g, st, *h)`: one parameter tensor."""

    p, g, ref = "p", "g", "p"

    def _load_state(self, j: int, k: int) -> str:
        return f"s{k} = st[{j}] if st[{j}].dtype == p.dtype else st[{j}].to(p.dtype)"

    def _fresh(self, op: str, args: list[Val]) -> str:
        return SINGLE[op].format(*self._single_args(op, args, "p"))

    def _inplace_template(self, op: str, pos: int, args: list[Val]) -> str | None:
        template = INPLACE.get((op, pos))
        return template and template.format(*self._single_args(op, args, "p"))

    def _apply(self, single: list[str], foreach: list[str], **vals: Val) -> None:
        names = {"p": "p", **{k: v.expr for k, v in vals.items()}}
        self.lines.extend(line.format(**names) for line in single)

    def _store_back(self, j: int, k: int) -> str:
        return f"st[{j}].copy_(s{k})"

    def _clone_expr(self, expr: str) -> str:
        return f"{expr}.clone()"

    def _copy_into(self, k: int, v: Val) -> None:
        self.lines.append(f"st[{self.plan.slots.index(k)}].copy_({v.expr})")


class ForeachEmitter(Emitter):
    """Body of `_update_foreach(ps, gs, st, *h)`: lists of tensors of one dtype and device."""

    p, g, ref = "ps", "gs", "ps[0]"

    def _load_state(self, j: int, k: int) -> str:
        return (f"s{k} = st[{j}] if st[{j}][0].dtype == ps[0].dtype "
                f"else [x.to(ps[0].dtype) for x in st[{j}]]")

    def _sig(self, args: list[Val]) -> str | None:
        """Foreach signature (L list, S number), or None when only a comprehension will do."""
        list_kinds = {a.kind for a in args if a.kind != G}
        if len(list_kinds) > 1 or any(a.kind == G and not a.num for a in args):
            return None  # mixed tensor / per-parameter-scalar lists, or a 0-d tensor scalar
        return "".join("S" if a.kind == G else "L" for a in args)

    def _native(self, template: str | None) -> str | None:
        if template is None or not available(template):
            return None
        self.used_foreach |= foreach_names(template)
        return template

    def _fresh(self, op: str, args: list[Val]) -> str:
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

    def _inplace_template(self, op: str, pos: int, args: list[Val]) -> str | None:
        sig = self._sig(args)
        native = self._native(FOREACH_INPLACE.get((op, sig, pos))) if sig else None
        return native and native.format(*(a.expr for a in args))

    def _apply(self, single: list[str], foreach: list[str], **vals: Val) -> None:
        """Foreach lines -- or a loop over single-tensor lines when per-parameter scalars or
        0-d tensor scalars are involved (the foreach scalar overloads want numbers)."""
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

    def _store_back(self, j: int, k: int) -> str:
        self.used_foreach.add("_foreach_copy_")
        return f"torch._foreach_copy_(st[{j}], s{k})"

    def _clone_expr(self, expr: str) -> str:
        return f"[x.clone() for x in {expr}]"

    def _copy_into(self, k: int, v: Val) -> None:
        same_kind = (k in self.plan.uniform) == (v.kind == P)
        j = self.plan.slots.index(k)  # position in st
        if same_kind:
            self.used_foreach.add("_foreach_copy_")
            self.lines.append(f"torch._foreach_copy_(st[{j}], {v.expr})")
        else:
            self.lines.append(f"for _d, _v in zip(st[{j}], {v.expr}):")
            self.lines.append("    _d.copy_(_v)")

"""The maths in the exported file's docstrings: the live program, its update equations in
closed form (through `primitives.symbolic`), the defaults and what each argument means."""

from __future__ import annotations

import textwrap

import sympy

from optsearch.primitives.export.plan import Plan
from optsearch.primitives.export.spec import Spec
from optsearch.primitives.liveness import live_program
from optsearch.primitives.printer import format_program
from optsearch.primitives.symbolic import live_expressions


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


def _module_doc(spec: Spec, plan: Plan, short: str, args) -> str:
    program_text = format_program(live_program(spec.program)).rstrip().replace("\n", "\n    ")
    slots = [f"{spec.program.slots[k]}" + (" (0-d, uniform)" if k in plan.uniform else "")
             for k in plan.slots]
    lr_note = ("`lr` is the real learning rate (it replaces the program's peak-lr constant)."
               if spec.lr_input == "1.0" else
               "`lr` multiplies the program's lr input (default 1.0 = the discovered schedule "
               "value); schedulers scale it.")
    return "\n".join([
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


def describe(spec: Spec, plan: Plan, class_name: str, args) -> tuple[str, str, str]:
    """(module docstring, one-line class summary, constructor argument docs)."""
    what = (f"the {spec.recognized} update rule, recognised in a searched program"
            if spec.recognized else "an optimizer discovered by program search")
    short = f"{class_name}: {what}, exported by optsearch."
    return _module_doc(spec, plan, short, args), short, "\n".join(_arg_docs(spec, args))

"""The whole file: spec -> plan -> the two update-function bodies -> docstrings -> template."""

from __future__ import annotations

from optsearch.primitives.export.docstring import describe
from optsearch.primitives.export.emit import ForeachEmitter, SingleEmitter
from optsearch.primitives.export.plan import elementwise, make_plan
from optsearch.primitives.export.spec import check_class_name, make_spec, signature
from optsearch.primitives.export.templates import render
from optsearch.primitives.program import Program


def export_source(program: Program, class_name: str = "DiscoveredOptimizer",
                  recognition=None) -> str:
    """The text of one `.py` file defining `class_name`, a torch.optim.Optimizer subclass."""
    check_class_name(class_name)
    spec = make_spec(program, recognition)
    plan = make_plan(spec)
    single, foreach = SingleEmitter(spec, plan), ForeachEmitter(spec, plan)
    bodies = single.emit(), foreach.emit()
    args = signature(spec)
    slots = tuple((spec.program.slots[k], k in plan.uniform) for k in plan.slots)
    return render(spec, args, class_name=class_name, docs=describe(spec, plan, class_name, args),
                  slots=slots, chunkable=elementwise(spec, plan),
                  foreach_ops=foreach.used_foreach | {"_foreach_neg"}, bodies=bodies)

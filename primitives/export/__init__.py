"""Export a program as one standalone `torch.optim.Optimizer` file that depends only on torch.

The source is generated from the checked `Program` model only (pool names, identifiers from the
model, `repr` of floats), never from user text. Only live statements and live state slots make
it into the file (`primitives.liveness`). The modules, in the order `export_source` uses them:

- `spec`: which program is exported, its hyperparameters (named when recognised, else
  numbered `c0, c1, ...`) and the constructor signature; validates every name and number.
- `plan`: the kind of every value (tensor, per-parameter or group scalar), which state slots
  are uniform (0-d), buffer lifetimes, the fused weight update, whether it is element-wise.
- `emit` (with the torch expression tables of `ops`): the single-tensor and foreach bodies.
- `docstring`: the live program and its update equations in closed form.
- `templates`: the fixed text of the file and the generated hyperparameter methods.
"""

from optsearch.primitives.export.source import export_source
from optsearch.primitives.export.spec import default_class_name

__all__ = ["default_class_name", "export_source"]

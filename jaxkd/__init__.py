"""jaxkd: teacher-student optimisation of image classifiers in JAX/Flax.

Four papers as one engine and small plans: born-again networks, tolerant teachers
(knowledge distillation in generations), snapshot distillation and route constrained
optimisation. See README.md and docs/architecture.md.

`jaxkd.load_model(path)` (an exported model: `(apply_fn, variables, meta)`, see
`jaxkd.exported`) is resolved on first use, so `import jaxkd` (and `jaxkd --help`) does
not import JAX.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {"load_model": "jaxkd.exported"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jaxkd' has no attribute {name!r}")

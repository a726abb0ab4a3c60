"""jaxkd: teacher-student optimisation of image classifiers in JAX/Flax.

Four papers as one engine and small plans: born-again networks, tolerant teachers
(knowledge distillation in generations), snapshot distillation and route constrained
optimisation. See README.md and docs/architecture.md.
"""

__version__ = "0.1.0"


def load_model(path):
    """An exported model (`jaxkd export --workdir=W --out=FILE`): `(apply_fn, variables,
    meta)`, where `apply_fn(variables, images)` normalises uint8 (or [0, 1] float) NHWC
    images as in training and returns logits, and `meta['class_names']` names them.
    See `jaxkd.exported` (imported on first use: `import jaxkd` stays light)."""
    from jaxkd.exported import load_model as _load_model
    return _load_model(path)

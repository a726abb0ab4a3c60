"""jaxkd: teacher-student optimisation of image classifiers in JAX/Flax.

Four papers as one engine and small plans: born-again networks, tolerant teachers
(knowledge distillation in generations), snapshot distillation and route constrained
optimisation. See README.md and docs/architecture.md.
"""

__version__ = "0.1.0"

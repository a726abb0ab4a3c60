"""A teacher and a student trained side by side: RCO's route learning at every iteration.

[RCO] Table 6's RL row (M_gap = 1.28e-3 epochs, "student mimic teacher's every
iteration") has the student learn, at each iteration, from the teacher's state at that
iteration. Kept as anchors that would be 187 500 checkpoints of a ResNet-50; trained
together it is one program: the pair's parameters are `{'teacher': ..., 'student': ...}`,
both networks see the same batch, the teacher learns from the labels and the student from
the labels and the teacher's current output (`jaxkd.losses` 'online_route'). Inference
(evaluation, prediction, ensembles) runs the student alone.

References:
    [RCO] Jin et al., "Knowledge Distillation via Route Constrained Optimization", ICCV 2019,
    Sec. 3.5 and Table 6.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from jaxkd.validation import fail


class RoutePair(nn.Module):
    """Teacher + student; `return_features=True` gives (student logits, teacher logits).

    Attributes:
        num_classes: logits of both networks.
        build: the zoo's `get_model`, which builds each network by name.
        teacher_model: the teacher's zoo name; `teacher_overrides` its overrides (items).
        student_model: the student's zoo name; `student_overrides` its overrides (items).
    """

    num_classes: int
    build: Callable[..., nn.Module]
    teacher_model: str = "resnet20"
    student_model: str = "resnet8"
    teacher_overrides: tuple = ()
    student_overrides: tuple = ()
    dtype: Any = jnp.float32

    def setup(self):
        self.teacher = self.build(self.teacher_model, num_classes=self.num_classes,
                                  dtype=self.dtype, **dict(self.teacher_overrides))
        self.student = self.build(self.student_model, num_classes=self.num_classes,
                                  dtype=self.dtype, **dict(self.student_overrides))

    def __call__(self, x, train: bool = False, return_features: bool = False):
        student = self.student(x, train=train)
        if not (return_features or self.is_initializing()):
            return student
        teacher = self.teacher(x, train=train)
        return (student, teacher) if return_features else student


def validate(kwargs: dict) -> None:
    """The two networks must be zoo names; overrides are items (name, value)."""
    for role in ("teacher", "student"):
        name = kwargs[f"{role}_model"]
        if not isinstance(name, str) or not name:
            fail(f"route_pair: {role}_model", "must name a zoo model", name)
        items = kwargs[f"{role}_overrides"]
        if not all(isinstance(i, (tuple, list)) and len(i) == 2 for i in items):
            fail(f"route_pair: {role}_overrides", "must be (name, value) pairs", items)

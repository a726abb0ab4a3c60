"""jaxkd train steps ready to time: the engine's own `make_train_step`, compiled ahead of time.

`build_step(...)` returns a `StepRunner`: calling it runs one real jaxkd training step
(`jaxkd.engine.step.make_train_step`, the program `jaxkd.run` trains with: SGD with Nesterov
momentum and weight decay from the default config, BatchNorm updates, the non-finite guard,
the metrics) on one fixed batch already placed on the devices, and returns the outputs to
block on. A KD step also runs the teacher forward in inference mode with the `kd` loss
(T = 4, CE + T^2 KL); a plain step uses `cross_entropy` and no teacher.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import conv_impl
from jaxkd import losses, models
from jaxkd.config import default_config
from jaxkd.engine import sharding
from jaxkd.engine import state as state_lib
from jaxkd.engine import step as step_lib


@dataclasses.dataclass
class StepRunner:
    """One compiled jaxkd train step with its own (donated, updated) state."""

    name: str
    compiled: Any
    state: Any
    teacher: Any
    batch: dict
    key: jax.Array
    batch_size: int
    compile_s: float
    lower_s: float

    def __call__(self):
        self.state, metrics = self.compiled(self.state, self.teacher, self.batch, self.key)
        return self.state.params, metrics


def random_batch(mesh, batch_size: int, num_classes: int, image_size: int = 32,
                 seed: int = 0) -> dict:
    """A normalised-looking float32 NHWC batch and int32 labels, sharded P('data')."""
    rng = np.random.default_rng(seed)
    batch = {"image": rng.normal(size=(batch_size, image_size, image_size, 3))
             .astype(np.float32),
             "label": rng.integers(0, num_classes, batch_size).astype(np.int32)}
    return jax.device_put(batch, sharding.batch_sharding(mesh))


def build_step(*, model: str = "resnet20", kd: bool = True, teacher: str = "",
               batch_size: int = 128, num_classes: int = 10, dtype: str = "float32",
               num_devices: int = 1, conv: str = "xla", image_size: int = 32,
               seed: int = 0, name: str = "") -> StepRunner:
    """Builds and compiles (ahead of time) one jaxkd train step.

    Args:
        model: student model name (`jaxkd.models.list_models()`).
        kd: KD step (teacher forward + `kd` loss) or plain step (`cross_entropy`).
        teacher: teacher model name; empty means the same architecture as the student.
        batch_size: global batch.
        num_classes: logits.
        dtype: 'float32' or 'bfloat16' activations.
        num_devices: devices of the ('data',) mesh (0: all).
        conv: convolution implementation (`benchmarks.conv_impl.IMPLS`), applied to both
            student and teacher while tracing; 'xla' is jaxkd as shipped.
        image_size: square input size.
        seed: seed of the parameters and the batch.
        name: label of the runner.
    """
    mesh = sharding.make_mesh(num_devices)
    act = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
    student = models.get_model(model, num_classes=num_classes, dtype=act)
    shape = (image_size, image_size, 3)
    tx = state_lib.make_optimizer(default_config().optimizer, optax.constant_schedule(0.1))
    variables = state_lib.init_variables(student, jax.random.key(seed), shape)
    state = sharding.replicate(state_lib.create_train_state(student, variables, tx), mesh)
    teacher_model, teacher_vars = None, None
    if kd:
        teacher_model = models.get_model(teacher or model, num_classes=num_classes, dtype=act)
        teacher_vars = sharding.replicate(
            state_lib.init_variables(teacher_model, jax.random.key(seed + 1), shape), mesh)
    spec = losses.get("kd" if kd else "cross_entropy")
    batch = random_batch(mesh, batch_size, num_classes, image_size, seed)
    key = jax.random.key(seed)
    with conv_impl.use(conv):
        step = step_lib.make_train_step(student, spec, dict(spec.defaults), mesh=mesh,
                                        teacher_model=teacher_model, dtype=act)
        t0 = time.perf_counter()
        lowered = step.lower(state, teacher_vars, batch, key)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        t2 = time.perf_counter()
    return StepRunner(name or f"{model}_{'kd' if kd else 'plain'}_{conv}", compiled, state,
                      teacher_vars, batch, key, batch_size, compile_s=t2 - t1,
                      lower_s=t1 - t0)

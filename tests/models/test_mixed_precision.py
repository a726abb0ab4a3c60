"""bfloat16 inference, jitted, against the same variables in float32.

Found by the GPU-script rehearsal (experiments/gpu, Python 3.12, jax 0.12.0.1): XLA:CPU
fused a CIFAR ResNet's last block and the global pooling into one YNNPACK fusion that
returned NaN logits in bfloat16, so every evaluation of a `config.dtype='bfloat16'` run
reported chance accuracy while training looked fine. `classifier_output` now keeps the
two apart on CPU. The eager forward pass was always right, so the reference here is the
float32 network: bfloat16 logits must be finite and close to it.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import models
from tests.models import zoo

# One of each family whose head is `classifier_output`, small enough for CPU tests, with
# the relative error its bfloat16 logits keep on jax 0.10.2 (measured 3-5e-3; MobileNetV2,
# 53 layers with ReLU6 and depthwise convolutions on synthetic variables, 4.7e-2).
TOLERANCE = {"resnet8": 1e-2, "preact_resnet20": 1e-2, "wrn_10_1": 1e-2,
             "densenet_bc_16_8": 1e-2, "mobilenetv2_cifar": 8e-2}


@pytest.mark.parametrize("name", sorted(TOLERANCE))
def test_jitted_bfloat16_inference_is_finite_and_close_to_float32(name):
    images = jnp.asarray(np.random.default_rng(0).standard_normal((4, 32, 32, 3)),
                         jnp.float32)
    f32 = models.get_model(name, num_classes=100)
    bf16 = models.get_model(name, num_classes=100, dtype=jnp.bfloat16)
    variables = zoo.synthetic_variables(f32, images)
    expected = jax.jit(lambda v, x: f32.apply(v, x, train=False))(variables, images)
    got = jax.jit(lambda v, x: bf16.apply(v, x, train=False))(variables, images)
    assert got.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(got))), f"{name}: non-finite bfloat16 logits"
    # bfloat16 keeps 8 significant bits: relative errors of 1e-3 to 1e-2 over a network
    # (METHOD.md), more through MobileNetV2; NaN never passes.
    error = float(jnp.linalg.norm(got - expected) / jnp.linalg.norm(expected))
    assert error < TOLERANCE[name], f"{name}: relative error {error:.2e} of bfloat16 logits"

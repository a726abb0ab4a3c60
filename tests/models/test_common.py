"""The zoo's shared building blocks: float32 parameters, PyTorch padding, BatchNorm
conventions and the `head` on pooled features."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import models
from jaxkd.models import common
from tests.models import zoo
from tests.models.zoo import KEY, param_shapes


def test_params_are_float32_with_bfloat16_activations():
    model = models.get_model("resnet8", num_classes=10, dtype=jnp.bfloat16)
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(param_shapes(model, 32))}
    assert dtypes == {jnp.dtype(jnp.float32)}


# -- new -------------------------------------------------------------------------------------

class _Conv(nn.Module):
    strides: int = 2

    @nn.compact
    def __call__(self, x):
        return common.conv(1, 3, self.strides, dtype=jnp.bfloat16)(x)


def test_conv_pads_like_pytorch_has_no_bias_and_float32_kernels():
    x = jnp.ones((1, 4, 4, 1))
    variables = _Conv().init(KEY, x)
    assert set(variables["params"]["Conv_0"]) == {"kernel"}              # no bias
    assert variables["params"]["Conv_0"]["kernel"].dtype == jnp.float32
    ones = {"params": {"Conv_0": {"kernel": jnp.ones((3, 3, 1, 1))}}}
    out = _Conv().apply(ones, x)
    assert out.shape == (1, 2, 2, 1) and out.dtype == jnp.bfloat16
    # Symmetric padding of 1: the first window sees 2x2 real pixels (XLA's SAME, padding
    # (0, 1) for a stride of 2, would see 3x3).
    np.testing.assert_array_equal(np.asarray(out[0, :, :, 0], np.float32), [[4, 6], [6, 9]])


class _BN(nn.Module):
    zero_init: bool = False

    @nn.compact
    def __call__(self, x, train):
        return common.batch_norm(train=train, dtype=jnp.float32, zero_init=self.zero_init)(x)


def test_batch_norm_uses_pytorch_momentum_and_zero_init():
    x = jnp.array([[1.0, 10.0], [3.0, 30.0]])
    variables = _BN().init(KEY, x, train=False)
    np.testing.assert_array_equal(variables["params"]["BatchNorm_0"]["scale"], 1.0)
    out, state = _BN().apply(variables, x, train=True, mutable=["batch_stats"])
    stats = state["batch_stats"]["BatchNorm_0"]
    np.testing.assert_allclose(stats["mean"], [0.2, 2.0], rtol=1e-6)    # 0.1 * batch mean
    np.testing.assert_allclose(out[:, 0], [-1, 1], atol=1e-4)            # batch statistics
    inference = _BN().apply(variables, x, train=False)                    # running averages
    np.testing.assert_allclose(inference, x / np.sqrt(1 + common.BN_EPSILON), rtol=1e-6)
    zero = _BN(zero_init=True).init(KEY, x, train=False)
    np.testing.assert_array_equal(zero["params"]["BatchNorm_0"]["scale"], 0.0)


class _Head(nn.Module):
    @nn.compact
    def __call__(self, x, train=False, return_features=False):
        return common.classifier_output(x, num_classes=3, dtype=jnp.bfloat16,
                                        return_features=return_features, dropout_rate=0.5,
                                        train=train)


def test_classifier_output_pools_then_applies_the_head():
    x = jax.random.normal(KEY, (2, 3, 3, 4))
    variables = _Head().init(KEY, x)
    head = variables["params"]["head"]
    np.testing.assert_array_equal(head["bias"], 0.0)
    logits, features = _Head().apply(variables, x, return_features=True)
    assert logits.dtype == features.dtype == jnp.float32
    np.testing.assert_allclose(features, x.mean(axis=(1, 2)), rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(logits, features @ head["kernel"] + head["bias"], atol=0.05)
    _, train_features = _Head().apply(variables, x, train=True, return_features=True,
                                      rngs={"dropout": KEY})
    np.testing.assert_allclose(train_features, features)   # taken before the dropout


def test_spec_keeps_fixed_arguments_and_overrides_apart():
    s = common.spec(nn.Dense, {"use_bias": True}, None, input_size=224, features=3)
    assert s == common.ModelSpec(nn.Dense, {"features": 3}, {"use_bias": True}, None, 224)


# -- bfloat16 inference, jitted, against the same variables in float32 ---------------------
# Found by the GPU-script rehearsal (experiments/gpu, Python 3.12, jax 0.12.0.1): XLA:CPU
# fused a CIFAR ResNet's last block and the global pooling into one YNNPACK fusion that
# returned NaN logits in bfloat16, so every evaluation of a `config.dtype='bfloat16'` run
# reported chance accuracy while training looked fine. `classifier_output` now keeps the
# two apart on CPU. The eager forward pass was always right, so the reference here is the
# float32 network: bfloat16 logits must be finite and close to it. CI's newest-set stage
# runs this file.

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

"""`cpu_conv`, the zoo's convolution: XLA's values and gradients, and the gradient fence
that survives XLA's optimisations on CPU."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import models
from tests.models.zoo import KEY

NUM_CLASSES = 10


@pytest.mark.parametrize("name, overrides", [("resnet8", {}),
                                             ("mobilenetv2_cifar", {"width": 0.35})])
def test_cpu_kernel_gradient_equals_xla(name, overrides, monkeypatch):
    """`cpu_conv` (the zoo's convolution) gives XLA's values and gradients: residual
    chains (ResNet) and depthwise convolutions (MobileNetV2), input and parameters."""
    from jax import lax

    from jaxkd.models import common

    x = jax.random.normal(KEY, (4, 16, 16, 3))

    def grads(model, variables):
        def loss(params, x):
            logits, _ = model.apply({**variables, "params": params}, x, train=True,
                                    mutable=["batch_stats"])
            return jnp.sum(jnp.sin(logits))
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], x)

    model = models.get_model(name, num_classes=NUM_CLASSES, **overrides)
    variables = model.init(KEY, x, train=False)
    got = grads(model, variables)
    monkeypatch.setattr(common, "conv_general_dilated", lax.conv_general_dilated)
    want = grads(models.get_model(name, num_classes=NUM_CLASSES, **overrides), variables)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_cpu_kernel_gradient_fence_survives_compilation():
    """The conditional that materialises the activations is still in the optimised CPU
    program (an XLA that folded it would silently bring back the slow transposes), and it
    is the identity, also for NaN and -0.0."""
    from jaxkd.models import cpu_conv

    model = models.get_model("resnet8", num_classes=NUM_CLASSES)
    x = jax.random.normal(KEY, (2, 8, 8, 3))
    variables = model.init(KEY, x, train=False)

    def loss(params):
        logits, _ = model.apply({**variables, "params": params}, x, train=True,
                                mutable=["batch_stats"])
        return jnp.sum(logits)
    text = jax.jit(jax.grad(loss)).lower(variables["params"]).compile().as_text()
    convs = sum(1 for path, _ in jax.tree_util.tree_leaves_with_path(variables["params"])
                if "Conv" in jax.tree_util.keystr(path))
    # One per convolution whose input is an activation (the stem reads the image itself).
    assert text.count(" conditional(") >= convs - 1 > 0
    v = jnp.array([jnp.nan, -0.0, 1.5])
    out = jax.jit(cpu_conv._materialised)(v)
    assert np.isnan(out[0]) and np.signbit(out[1]) and out[2] == 1.5


# -- new -------------------------------------------------------------------------------------

@pytest.mark.parametrize("strides, groups", [((1, 1), 1), ((2, 2), 1), ((1, 1), 4)])
def test_one_convolution_has_xla_values_and_gradients(strides, groups):
    from jax import lax

    from jaxkd.models import cpu_conv

    x = jax.random.normal(KEY, (2, 6, 6, 4))
    w = jax.random.normal(jax.random.key(1), (3, 3, 4 // groups, 8))
    kwargs = dict(window_strides=strides, padding=((1, 1), (1, 1)),
                  dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)
    ours = lambda x, w: cpu_conv.conv_general_dilated(x, w, **kwargs)   # noqa: E731
    xla = lambda x, w: lax.conv_general_dilated(x, w, **kwargs)        # noqa: E731
    np.testing.assert_allclose(jax.jit(ours)(x, w), xla(x, w), rtol=1e-6, atol=1e-6)
    loss = lambda f: lambda x, w: jnp.sum(jnp.cos(f(x, w)))             # noqa: E731
    got = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(x, w)
    want = jax.jit(jax.grad(loss(xla), argnums=(0, 1)))(x, w)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

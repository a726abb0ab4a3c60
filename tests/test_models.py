"""Tests for jaxkd.models: registry, parameter counts against the papers, forward contract.

Parameter counts use `jax.eval_shape` of `init` (nothing is allocated), so the large networks
are checked too; forward passes run under `jax.jit` on CPU with the small member of each
family at batch 2, one compiled program per model, on synthetic variables with the model's
structure (a compiled `init` costs more XLA time on CPU than the forward passes; the real
initialisation is checked once, on ResNet-8).
"""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import models
from jaxkd.models import densenet, mobilenet_v2, resnet_cifar

KEY = jax.random.key(0)


def param_shapes(model, size: int):
    images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    return jax.eval_shape(functools.partial(model.init, train=False), KEY, images)["params"]


def count_params(name: str, num_classes: int, size: int = 32, **overrides) -> int:
    if "remat" in models.model_overrides(name):
        overrides.setdefault("remat", False)  # same parameters, cheaper to trace
    model = models.get_model(name, num_classes=num_classes, **overrides)
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(param_shapes(model, size)))


# (name, num_classes, input size, published count, source). CIFAR counts with the CIFAR-100
# head; ImageNet ones with 1000 classes.
PUBLISHED = [
    ("resnet20", 100, 32, 0.27e6, "He et al. 2016a, Table 6"),
    ("resnet56", 100, 32, 0.85e6, "He et al. 2016a, Table 6"),
    ("resnet110", 100, 32, 1.7e6, "He et al. 2016a, Table 6"),
    ("preact_resnet110", 100, 32, 1.7e6, "He et al. 2016b, Table 3"),
    ("densenet_bc_100_12", 100, 32, 0.8e6, "Huang et al. 2017, Table 2"),
    ("densenet_bc_190_40", 100, 32, 25.6e6, "Huang et al. 2017, Table 2"),
    ("wrn_28_1", 100, 32, 0.38e6, "Furlanello et al. 2018, Table 1"),
    ("wrn_28_2", 100, 32, 1.48e6, "Furlanello et al. 2018, Table 1"),
    ("wrn_28_5", 100, 32, 9.16e6, "Furlanello et al. 2018, Table 1"),
    ("wrn_28_10", 100, 32, 36.5e6, "Zagoruyko & Komodakis 2016, Table 4"),
    ("resnet18", 1000, 224, 11_689_512, "torchvision"),
    ("resnet34", 1000, 224, 21_797_672, "torchvision"),
    ("resnet50", 1000, 224, 25_557_032, "torchvision"),
    ("resnet101", 1000, 224, 44_549_160, "torchvision"),
    ("resnet152", 1000, 224, 60_192_808, "torchvision"),
    ("mobilenetv2", 1000, 224, 3_504_872, "torchvision (the paper rounds to 3.4M)"),
]


@pytest.mark.parametrize("name,num_classes,size,published,source", PUBLISHED,
                         ids=[row[0] for row in PUBLISHED])
def test_parameter_count_matches_publication(name, num_classes, size, published, source):
    count = count_params(name, num_classes, size)
    assert count == pytest.approx(published, rel=0.03), f"{name}: {count} vs {source}"


# Born-again DenseNets: DenseNet-BC, (L - 4) // 6 layers per block; our exact counts (the
# paper's Table 1 rounds differently, see docs/models.md).
BAN_DENSENETS = {"densenet_112_33": (6_987_916, 6.3e6), "densenet_90_60": (15_189_100, 16.1e6),
                 "densenet_80_80": (21_104_180, 22.4e6), "densenet_80_120": (47_277_820, 50.4e6)}


@pytest.mark.parametrize("name", sorted(BAN_DENSENETS))
def test_born_again_densenet_counts(name):
    ours, paper = BAN_DENSENETS[name]
    assert count_params(name, 100) == ours
    assert ours == pytest.approx(paper, rel=0.11)


def test_ban_112_33_paper_count_is_a_106_33_densenet_bc():
    model = densenet.DenseNet(num_classes=100, layers_per_block=(106 - 4) // 6, growth_rate=33)
    count = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(param_shapes(model, 32)))
    assert count == pytest.approx(6.3e6, rel=0.01)


def test_params_are_float32_with_bfloat16_activations():
    model = models.get_model("resnet8", num_classes=10, dtype=jnp.bfloat16)
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(param_shapes(model, 32))}
    assert dtypes == {jnp.dtype(jnp.float32)}


def test_registry_names_every_family():
    names = set(models.list_models())
    expected = {"resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56",
                "resnet110", "preact_resnet20", "preact_resnet110", "preact_resnet164",
                "densenet_bc_16_8", "densenet_bc_40_12", "densenet_bc_100_12", "densenet_bc_190_40",
                "densenet_112_33", "densenet_90_60", "densenet_80_80", "densenet_80_120",
                "wrn_16_1", "wrn_28_1", "wrn_28_2", "wrn_28_5", "wrn_28_10",
                "mobilenetv2_cifar", "mobilenetv2", "resnet18", "resnet34", "resnet50",
                "resnet101", "resnet152"}
    assert expected <= names
    assert models.list_models() == sorted(names)


def test_unknown_name_lists_known_models():
    with pytest.raises(ValueError, match="unknown model 'resnet21'.*resnet20"):
        models.get_model("resnet21", num_classes=10)


def test_unknown_override_is_named():
    with pytest.raises(ValueError, match="dropout_rate"):
        models.get_model("resnet20", num_classes=10, dropout_rate=0.1)
    with pytest.raises(ValueError, match="width_mult"):
        models.get_model("mobilenetv2_cifar", num_classes=10, width_mult=0.5)


@pytest.mark.parametrize("name,overrides,match", [
    ("wrn_28_10", {"dropout_rate": 1.0}, "dropout_rate"),
    ("mobilenetv2_cifar", {"width": 0.0}, "width"),
    ("mobilenetv2_cifar", {"expansion": 0}, "expansion"),
    ("mobilenetv2_cifar", {"strides": (1, 1, 1)}, "strides"),
])
def test_invalid_override_values(name, overrides, match):
    with pytest.raises(ValueError, match=match):
        models.get_model(name, num_classes=10, **overrides)


def test_overrides_are_listed_with_defaults():
    assert models.model_overrides("densenet_bc_190_40")["remat"] is True
    assert models.model_overrides("densenet_bc_100_12") == {
        "layers_per_block": 16, "growth_rate": 12, "bottleneck": True, "compression": 0.5,
        "stem_features": 0, "remat": False}
    assert models.model_overrides("wrn_28_10") == {"dropout_rate": 0.0}
    assert models.model_overrides("mobilenetv2_cifar")["expansion"] == 6
    assert models.input_size("resnet50") == models.input_size("mobilenetv2") == 224
    assert models.input_size("resnet20") == models.input_size("mobilenetv2_cifar") == 32


def test_cifar_stem_resnet50_is_rco_teacher_size():
    # torchvision's ResNet-50, a 100-class head and a 3x3 instead of a 7x7 stem.
    expected = 25_557_032 - 900 * (2048 + 1) - (7 * 7 - 3 * 3) * 3 * 64
    assert count_params("resnet50", 100, 32, cifar_stem=True) == expected


def test_mobilenet_width_and_expansion_change_the_size():
    base = count_params("mobilenetv2_cifar", 100)
    assert count_params("mobilenetv2_cifar", 100, width=0.5) < base
    assert count_params("mobilenetv2_cifar", 100, expansion=10) > base
    assert mobilenet_v2.make_divisible(32 * 0.35) == 16  # never below 90% of the value
    assert mobilenet_v2.make_divisible(24 * 0.5) == 16


def flops_per_image(model, size: int) -> float:
    variables = jax.eval_shape(functools.partial(model.init, train=False), KEY,
                               jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
    images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    lowered = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, images)
    return lowered.cost_analysis()["flops"]


@pytest.mark.parametrize("expansion,width,mflops", [(4, 0.35, 5.4), (10, 1.0, 72.6)])
def test_cifar_mobilenet_reproduces_rco_table3_flops(expansion, width, mflops):
    model = models.get_model("mobilenetv2_cifar", num_classes=100, width=width,
                             expansion=expansion, round_channels=False)
    assert flops_per_image(model, 32) / 1e6 == pytest.approx(mflops, rel=0.03)


def synthetic_variables(model, images):
    """The model's variables (structure from `eval_shape` of `init`) filled from numpy.

    He fan-in normal kernels, zero biases and means, unit scales and variances: realistic
    enough for forward-pass checks, and free, whereas a compiled `init` costs seconds of XLA
    time per model on CPU (the real initialisation is tested once, on ResNet-8).
    """
    shapes = jax.eval_shape(functools.partial(model.init, train=False), KEY, images)
    rng = np.random.default_rng(0)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            std = math.sqrt(2.0 / math.prod(leaf.shape[:-1]))
            return jnp.asarray(rng.normal(0.0, std, leaf.shape), leaf.dtype)
        value = 1.0 if name in ("scale", "var") else 0.0
        return jnp.full(leaf.shape, value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def test_initialisation_follows_the_papers():
    model = models.get_model("resnet8", num_classes=10, zero_init_residual=True)
    images = jnp.zeros((2, 32, 32, 3))
    # An rbg key: the same initialisers, several times cheaper to compile on CPU than threefry.
    key = jax.random.key(0, impl="rbg")
    variables = jax.jit(functools.partial(model.init, train=False))(key, images)
    params, stats = variables["params"], variables["batch_stats"]
    kernel = params["BasicBlock_2"]["Conv_0"]["kernel"]  # 3x3, 32 -> 64 channels
    assert kernel.shape == (3, 3, 32, 64)
    assert float(jnp.std(kernel)) == pytest.approx(math.sqrt(2.0 / (3 * 3 * 64)), rel=0.05)
    first = params["BasicBlock_0"]
    np.testing.assert_array_equal(first["BatchNorm_0"]["scale"], 1.0)
    np.testing.assert_array_equal(first["BatchNorm_1"]["scale"], 0.0)  # zero_init_residual
    for leaf in jax.tree.leaves(stats):
        assert set(np.unique(leaf)) <= {0.0, 1.0}
    np.testing.assert_array_equal(params["head"]["bias"], 0.0)
    # With the last BN at zero, a block with an identity shortcut starts as ReLU.
    block = resnet_cifar.BasicBlock(16, zero_init_residual=True)
    x = jax.random.normal(KEY, (2, 8, 8, 16))
    out = jax.jit(functools.partial(block.apply, train=False))(
        {"params": first, "batch_stats": stats["BasicBlock_0"]}, x)
    np.testing.assert_array_equal(out, jax.nn.relu(x))


def test_densenet_remat_changes_neither_parameters_nor_gradients():
    x = jax.random.normal(KEY, (2, 8, 8, 3))
    plain = densenet.DenseNet(num_classes=3, layers_per_block=1, growth_rate=4)
    remat = plain.clone(remat=True)
    variables = synthetic_variables(plain, x)
    assert (jax.tree.structure(jax.eval_shape(functools.partial(remat.init, train=False), KEY, x))
            == jax.tree.structure(variables))

    def grads(params, model):
        def loss(params):
            logits, state = model.apply({**variables, "params": params}, x, train=True,
                                        mutable=["batch_stats"])
            return jnp.sum(logits ** 2), state
        return jax.grad(loss, has_aux=True)(params)

    both = jax.jit(lambda params: [grads(params, model) for model in (plain, remat)])
    for a, b in zip(*(jax.tree.leaves(out) for out in both(variables["params"]))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# The small member of each family, run at batch 2 under jit (resnet18 at 32x32).
SMALL = [("resnet8", {}), ("preact_resnet20", {}), ("densenet_bc_16_8", {}),
         ("wrn_16_1", {"dropout_rate": 0.3}), ("mobilenetv2_cifar", {"width": 0.35}),
         ("resnet18", {})]
NUM_CLASSES = 10


def forward_all(model, bf16_model, variables, images):
    """Every output the tests need, in one program (one compilation per model).

    Eval outputs for `images` and for a batch whose second image differs; train outputs
    for those two with the same dropout key and for `images` with another key; the eval
    output of the bfloat16 model.
    """
    other = images.at[1].set(-images[1])

    def evaluate(x):
        return model.apply(variables, x, train=False, return_features=True)

    def train(x, key):
        return model.apply(variables, x, train=True, return_features=True,
                           mutable=["batch_stats"], rngs={"dropout": key})

    keys = jnp.stack([jax.random.key_data(jax.random.key(seed)) for seed in (1, 1, 2)])
    evals = jax.vmap(evaluate)(jnp.stack([images, other]))
    trains = jax.vmap(lambda x, k: train(x, jax.random.wrap_key_data(k)))(
        jnp.stack([images, other, images]), keys)
    bf16 = bf16_model.apply(variables, images, train=False, return_features=True)
    return evals, trains, bf16


@pytest.fixture(scope="module", params=SMALL, ids=[name for name, _ in SMALL])
def small(request):
    """A small model, synthetic variables and all its outputs under jit."""
    name, overrides = request.param
    model = models.get_model(name, num_classes=NUM_CLASSES, **overrides)
    bf16_model = models.get_model(name, num_classes=NUM_CLASSES, dtype=jnp.bfloat16,
                                  **overrides)
    images = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 32, 3)), jnp.float32)
    variables = synthetic_variables(model, images)
    evals, trains, bf16 = jax.jit(functools.partial(forward_all, model, bf16_model))(
        variables, images)
    return dict(name=name, overrides=overrides, variables=variables, evals=evals,
                trains=trains, bf16=bf16)


def test_forward_contract(small):
    logits, features = small["evals"]
    assert logits.shape == (2, 2, NUM_CLASSES) and logits.dtype == jnp.float32
    assert features.ndim == 3 and features.shape[:2] == (2, 2)
    assert features.dtype == jnp.float32
    head = small["variables"]["params"]["head"]
    np.testing.assert_allclose(logits, features @ head["kernel"] + head["bias"],
                               rtol=1e-5, atol=1e-5)
    # Inference uses the running averages: an example's output ignores the rest of the batch.
    np.testing.assert_allclose(logits[0, 0], logits[1, 0], rtol=1e-6, atol=1e-6)


def test_training_uses_and_updates_batch_statistics(small):
    (logits, features), state = small["trains"]
    assert logits.shape == (3, 2, NUM_CLASSES) and logits.dtype == jnp.float32
    assert features.shape[:2] == (3, 2) and features.dtype == jnp.float32
    assert not np.allclose(logits[0, 0], logits[1, 0])  # batch statistics
    old, new = small["variables"]["batch_stats"], state["batch_stats"]
    assert jax.tree.structure(old) == jax.tree.structure(new)
    for before, after in zip(jax.tree.leaves(old), jax.tree.leaves(new)):
        assert np.any(np.asarray(after[0]) != np.asarray(before))


def test_dropout_uses_the_dropout_rng_only_while_training(small):
    (logits, _), _ = small["trains"]
    has_dropout = small["overrides"].get("dropout_rate", 0.0) > 0
    assert (not np.allclose(logits[0], logits[2])) == has_dropout


def test_bfloat16_activations_give_float32_outputs(small):
    logits, features = small["bf16"]
    assert logits.dtype == features.dtype == jnp.float32
    reference = small["evals"][0][0]
    assert np.all(np.isfinite(logits))
    np.testing.assert_allclose(logits, reference, atol=0.1 * float(jnp.abs(reference).max()))


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

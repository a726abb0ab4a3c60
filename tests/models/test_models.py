"""The zoo's registry (`jaxkd.models`): names, overrides, parameter counts against the
papers, and the forward contract every model keeps.

Forward passes run under `jax.jit` on CPU with the small member of each family at batch 2,
one compiled program per model, on synthetic variables with the model's structure
(tests/models/zoo.py).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import models
from tests.models.zoo import count_params, synthetic_variables

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

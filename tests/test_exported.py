"""jaxkd.exported: one self-contained file per trained phase (`write`, `read`) and
`load_model`, on a freshly initialised tiny network (nothing trained). The file that
`jaxkd export` writes from a real run: tests/cli/test_export.py."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

import jaxkd
from jaxkd import exported, models
from jaxkd.engine import state as state_lib

SHAPE = (8, 8, 3)
META = {"model": "resnet8", "model_overrides": {}, "num_classes": 4,
        "class_names": ["ant", "bee", "cat", "dog"], "mean": [0.5, 0.4, 0.3],
        "std": [0.25, 0.2, 0.3], "image_shape": list(SHAPE), "dtype": "float32",
        "phase": "gen0", "method": "baseline", "jaxkd_version": jaxkd.__version__}


@pytest.fixture(scope="module")
def variables():
    model = models.get_model("resnet8", num_classes=4)
    return state_lib.init_variables(model, jax.random.key(0), SHAPE)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (3, *SHAPE), dtype=np.uint8)


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_write_then_read_gives_the_variables_and_meta(variables, tmp_path):
    path = exported.write(tmp_path / "sub" / "model.msgpack", variables, META)
    assert path == tmp_path / "sub" / "model.msgpack" and path.is_file()
    assert json.loads((tmp_path / "sub" / "model.msgpack.json").read_text()) == META
    assert not (tmp_path / "sub" / "model.msgpack.tmp").exists()     # written atomically
    arrays, meta = exported.read(path)
    assert meta == META
    assert set(arrays) == {"params", "batch_stats"}
    for got, want in zip(_leaves(arrays), _leaves(variables)):
        np.testing.assert_array_equal(got, want)


def test_load_model_applies_the_training_normalisation(variables, images, tmp_path):
    path = exported.write(tmp_path / "model.msgpack", variables, META)
    apply_fn, loaded, meta = jaxkd.load_model(path)
    assert meta == META
    logits = np.asarray(apply_fn(loaded, images))
    assert logits.shape == (3, 4)
    model = models.get_model("resnet8", num_classes=4)
    x = (images / 255.0 - np.array(META["mean"])) / np.array(META["std"])
    want = model.apply(variables, jnp.asarray(x, jnp.float32), train=False)
    np.testing.assert_allclose(logits, np.asarray(want), rtol=1e-5, atol=1e-5)
    # Floats are read as [0, 1]; one image gives one row of logits.
    np.testing.assert_allclose(np.asarray(apply_fn(loaded, images / 255.0)), logits,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(apply_fn(loaded, images[0])), logits[0],
                               rtol=1e-5, atol=1e-5)


def test_build_model_reads_overrides_lists_as_tuples():
    meta = dict(META, model="mobilenetv2_cifar",
                model_overrides={"width": 0.5, "strides": [2, 1, 1, 2, 2, 1, 2, 1]})
    model = exported.build_model(meta)
    assert model.strides == (2, 1, 1, 2, 2, 1, 2, 1) and model.width == 0.5
    assert exported.build_model(dict(META, dtype="bfloat16")).dtype == jnp.bfloat16


def test_a_foreign_file_is_a_value_error(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"method": "baseline"}))
    with pytest.raises(ValueError, match="config.json is not an exported jaxkd model"):
        exported.read(config)
    other = tmp_path / "other.msgpack"
    other.write_bytes(serialization.msgpack_serialize({"format": "something/2", "meta": "{}"}))
    with pytest.raises(ValueError, match=r"other.msgpack is not an exported jaxkd model "
                                         r"\(format 'something/2', expected "
                                         r"'jaxkd-exported-model/1'\)"):
        exported.read(other)
    plain = tmp_path / "list.msgpack"
    plain.write_bytes(serialization.msgpack_serialize([1, 2]))
    with pytest.raises(ValueError, match=r"\(format None, expected"):
        jaxkd.load_model(plain)


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ValueError, match=r"exported model .*nope.msgpack does not exist "
                                         r"\(make one with `jaxkd export"):
        exported.read(tmp_path / "nope.msgpack")

"""Exported models: one self-contained file per trained phase, and `load_model`.

An exported file (`jaxkd export --workdir=W --out=model.msgpack`) is a msgpack document
(`flax.serialization`) holding

* `format`: `FORMAT`;
* `meta`: JSON text: `model`, `model_overrides`, `num_classes`, `class_names`, `mean` and
  `std` (per channel, [0, 1] units), `image_shape` ([H, W, C]), `dtype`, `phase`, `method`,
  `jaxkd_version`, and where it came from (`workdir`, `checkpoint`, `source`);
* `variables`: `{'params': ..., 'batch_stats': ...}` as numpy arrays.

`export` also writes the metadata beside it as `<file>.json` for people to read; only the
file itself is needed to use the model:

    apply_fn, variables, meta = jaxkd.load_model("model.msgpack")
    logits = apply_fn(variables, images)     # uint8 [B, H, W, C] (or float in [0, 1])
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxkd import models
from jaxkd import workdir as workdir_lib

FORMAT = "jaxkd-exported-model/1"


def write(path: str | pathlib.Path, variables: dict, meta: dict) -> pathlib.Path:
    """Writes an exported file (and its `<file>.json` metadata); returns the file's path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x)), variables)
    blob = serialization.msgpack_serialize(
        {"format": FORMAT, "meta": json.dumps(meta, sort_keys=True), "variables": arrays})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    workdir_lib.write_text_atomic(path.with_name(path.name + ".json"),
                                  json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def read(path: str | pathlib.Path) -> tuple[dict, dict]:
    """(variables as numpy, meta) of an exported file; a foreign file is a ValueError."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"exported model {path} does not exist (make one with `jaxkd "
                         f"export --workdir=W --out={path}`)")
    try:
        doc = serialization.msgpack_restore(path.read_bytes())
    except Exception as err:  # pylint: disable=broad-except
        raise ValueError(f"{path} is not an exported jaxkd model: {type(err).__name__}: "
                         f"{str(err)[:200]}") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not an exported jaxkd model (format "
                         f"{doc.get('format') if isinstance(doc, dict) else None!r}, "
                         f"expected {FORMAT!r})")
    return doc["variables"], json.loads(doc["meta"])


def _tuples(value):
    """JSON lists back to tuples (hashable Flax module attributes)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def build_model(meta: dict):
    """The Flax module an exported file's variables belong to."""
    dtype = jnp.bfloat16 if meta.get("dtype") == "bfloat16" else jnp.float32
    return models.get_model(meta["model"], num_classes=int(meta["num_classes"]), dtype=dtype,
                            **_tuples(dict(meta.get("model_overrides", {}))))


def make_apply_fn(model, meta: dict) -> Callable:
    """`apply_fn(variables, images) -> logits [B, num_classes]`, jitted.

    `images`: [B, H, W, C] or one [H, W, C] image of the exported size; an integer dtype
    (uint8) is read as 0..255, a float dtype as [0, 1]. They are normalised with the
    training data's per-channel mean and std, as in training and evaluation.
    """
    mean = jnp.asarray(meta["mean"], jnp.float32)
    std = jnp.asarray(meta["std"], jnp.float32)
    compute = jnp.bfloat16 if meta.get("dtype") == "bfloat16" else jnp.float32

    @jax.jit
    def apply_fn(variables, images):
        images = jnp.asarray(images)
        single = images.ndim == 3
        x = images[None] if single else images
        x = x.astype(jnp.float32) / 255.0 if jnp.issubdtype(x.dtype, jnp.integer) \
            else x.astype(jnp.float32)
        x = ((x - mean) / std).astype(compute)
        logits = model.apply(variables, x, train=False).astype(jnp.float32)
        return logits[0] if single else logits

    return apply_fn


def load_model(path: str | pathlib.Path) -> tuple[Callable, dict, dict[str, Any]]:
    """Loads an exported model: `(apply_fn, variables, meta)`.

    `apply_fn(variables, images)` normalises uint8 (or [0, 1] float) NHWC images of
    `meta['image_shape']` and returns logits; `meta['class_names'][i]` names logit i.
    """
    arrays, meta = read(path)
    variables = jax.tree_util.tree_map(jnp.asarray, arrays)
    return make_apply_fn(build_model(meta), meta), variables, meta

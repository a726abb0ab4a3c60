"""`jaxkd predict`: class names and probabilities of images with an exported model.

    jaxkd predict --model=EXPORTED_FILE [--top=5] [--json] IMAGE_OR_FOLDER [...]

Images: PNG / JPEG (anything Pillow reads) files, or folders of them (recursively,
sorted); each is converted to the model's channels and resized (bilinear, as the data
pipeline resizes) to the model's image size. Prints, per image, the `--top` classes with
their softmax probabilities.
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import numpy as np
from absl import flags
from PIL import Image, UnidentifiedImageError

from jaxkd import exported
from jaxkd.cli import common

USAGE = __doc__
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def define_flags(fv) -> None:
    flags.DEFINE_string("model", None, "An exported model (`jaxkd export --out=...`).",
                        flag_values=fv)
    flags.DEFINE_integer("top", 5, "Classes to show per image.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("batch_size", 256, "Images per forward pass.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_bool("json", False, "Print one JSON list instead of text.", flag_values=fv)
    flags.mark_flags_as_required(["model"], flag_values=fv)


def image_paths(args: list[str]) -> list[pathlib.Path]:
    """The image files named by `args` (files, or folders searched recursively)."""
    out = []
    for arg in args:
        path = pathlib.Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)})")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise ValueError(f"{path}: no such image file or folder")
    return out


def load_image(path: pathlib.Path, image_shape) -> np.ndarray:
    """uint8[H, W, C] of the model's shape from an image file."""
    height, width, channels = image_shape
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not an image Pillow can read ({err})") from err
    return array[..., None] if channels == 1 else array


def predict(model_path, paths, *, top: int = 5, batch_size: int = 256) -> list[dict]:
    """Per image: `{'path', 'top': [{'class', 'index', 'probability'}, ...]}`."""
    apply_fn, variables, meta = exported.load_model(model_path)
    names = meta["class_names"]
    top = min(top, len(names))
    results = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        images = np.stack([load_image(p, meta["image_shape"]) for p in chunk])
        probs = np.asarray(jax.nn.softmax(apply_fn(variables, images), axis=-1))
        for path, p in zip(chunk, probs):
            order = np.argsort(-p, kind="stable")[:top]
            results.append({"path": str(path), "top": [
                {"class": names[i], "index": int(i), "probability": float(p[i])}
                for i in order]})
    return results


def format_text(results: list[dict]) -> str:
    lines = []
    for r in results:
        lines.append(r["path"])
        lines += [f"  {t['probability']:7.4f}  {t['class']}" for t in r["top"]]
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    fv = common.new_flags()
    define_flags(fv)
    args = common.parse(fv, argv, USAGE)
    common.setup_logging()

    def body():
        if not args:
            common.fail("name at least one image file or folder: jaxkd predict "
                        "--model=FILE IMAGE_OR_FOLDER")
        results = predict(fv["model"].value, image_paths(args), top=fv["top"].value,
                          batch_size=fv["batch_size"].value)
        print(json.dumps(results, indent=2) if fv["json"].value else format_text(results))
        sys.stdout.flush()
    return common.guarded(body)

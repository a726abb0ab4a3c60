"""Folders of images, one sub-folder per class, as a folder or a tar archive.

Accepted layouts for `config.data.path`:
  * `root/train/<class>/<image>` and `root/test/<class>/<image>` (also `val/` or
    `validation/` for the test split);
  * a folder holding `train.tar.gz` and `test.tar.gz` (or `.tar`, `.tgz`) archives of such
    folders, as in the CIFAR-10 JPEG copy under `shared/data/cifar10-jpeg/`;
  * a tar archive (compressed or not) of any of the above, with or without one top folder;
  * `root/<class>/<image>` alone: the training split; the test split then comes from
    `config.data.test_path` laid out the same way.

Any image Pillow can read is accepted; it is converted to RGB and, when its size differs,
resized (bilinear, aspect ratio not kept) to `image_size` x `image_size`. Class names are
the sorted folder names of the training split. Hidden files and folders are skipped; files
that are not inside a class folder are ignored. Decoding runs in a thread pool.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import re
import tarfile

import numpy as np
from PIL import Image

from jaxkd.data.dataset import ArrayDataset, RawData, check

TEST_NAMES = ("test", "val", "validation")
_SPLIT_ARCHIVE = re.compile(r"(train|test|val|validation)\.(tar|tar\.gz|tgz)$")
_CHUNK = 256


class _Tree:
    """File entries (path parts, where, bytes or a file path) and folders of a layout."""

    def __init__(self):
        self.files: list[tuple[tuple[str, ...], str, bytes | str]] = []
        self.dirs: dict[tuple[str, ...], str] = {}

    def add_file(self, parts, where, payload):
        if not any(p.startswith(".") or p == "__MACOSX" for p in parts):
            self.files.append((tuple(parts), where, payload))
            for i in range(1, len(parts)):
                self.dirs.setdefault(tuple(parts[:i]), where)

    def add_dir(self, parts, where):
        if parts and not any(p.startswith(".") for p in parts):
            self.dirs.setdefault(tuple(parts), where)


def _add_tar(tree: _Tree, path: str, prefix: tuple[str, ...] = ()) -> None:
    """Adds every member of a tar archive, read in one streaming pass."""
    with tarfile.open(path, mode="r|*") as archive:
        for member in archive:
            parts = tuple(p for p in member.name.split("/") if p not in ("", "."))
            if prefix and parts[:1] != prefix:
                parts = prefix + parts
            where = f"{path}:{member.name}"
            if member.isdir():
                tree.add_dir(parts, where)
            elif member.isfile():
                tree.add_file(parts, where, archive.extractfile(member).read())


def _add_folder(tree: _Tree, root: str) -> None:
    """Adds every file under `root`; top-level `train.tar.gz`-style archives are opened."""
    for current, dirs, names in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(current, root)
        base = () if rel == "." else tuple(rel.split(os.sep))
        tree.add_dir(base, current)
        for name in sorted(names):
            full = os.path.join(current, name)
            match = _SPLIT_ARCHIVE.match(name)
            if not base and match and tarfile.is_tarfile(full):
                _add_tar(tree, full, prefix=(match.group(1),))
            else:
                tree.add_file(base + (name,), full, full)


def read_tree(path: str) -> _Tree:
    """Lists the files of a folder or a tar archive at `path`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no image folder or archive at {path!r}")
    tree = _Tree()
    if os.path.isdir(path):
        _add_folder(tree, path)
    else:
        check(tarfile.is_tarfile(path), f"{path} is neither a folder nor a tar archive")
        _add_tar(tree, path)
    return _strip_top_folders(tree)


def _strip_top_folders(tree: _Tree) -> _Tree:
    """Drops leading folders shared by every file (a tar of `root/...`), above split folders."""
    while tree.files:
        tops = {parts[0] for parts, _, _ in tree.files}
        deep = all(len(parts) > 2 for parts, _, _ in tree.files)
        top = next(iter(tops))
        if len(tops) != 1 or not deep or top == "train" or top in TEST_NAMES:
            break
        stripped = _Tree()
        stripped.files = [(p[1:], w, x) for p, w, x in tree.files]
        stripped.dirs = {p[1:]: w for p, w in tree.dirs.items() if len(p) > 1}
        tree = stripped
    return tree


def _split_of(tree: _Tree, top: str | None):
    """The class folders and (class, where, payload) files under `top` (None: the root)."""
    offset = 0 if top is None else 1
    files, classes = [], {}
    for parts, where, payload in tree.files:
        if (top is None or parts[0] == top) and len(parts) >= offset + 2:
            files.append((parts[offset], parts, where, payload))
    for parts, where in tree.dirs.items():
        if (top is None or parts[0] == top) and len(parts) == offset + 1:
            classes[parts[offset]] = where
    return classes, sorted(files, key=lambda f: f[1])


def find_splits(tree: _Tree, path: str) -> dict:
    """Maps 'train' and, where present, 'test' to (class folders, files)."""
    tops = {parts[0] for parts in tree.dirs if parts}
    if "train" in tops:
        found = {"train": _split_of(tree, "train")}
        test = next((t for t in TEST_NAMES if t in tops), None)
        if test:
            found["test"] = _split_of(tree, test)
        return found
    if any(t in tops for t in TEST_NAMES):
        return {"test": _split_of(tree, next(t for t in TEST_NAMES if t in tops))}
    check(bool(tree.files), f"{path}: no image files found")
    return {"class_root": _split_of(tree, None)}


def _decode(payload: bytes | str, where: str, image_size: int) -> np.ndarray:
    """Decodes one image to uint8[image_size, image_size, 3]; errors name the file."""
    try:
        if isinstance(payload, str):
            with open(payload, "rb") as f:
                payload = f.read()
        with Image.open(io.BytesIO(payload)) as image:
            image = image.convert("RGB")
            if image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except Exception as e:  # Pillow raises several types for corrupt data.
        raise ValueError(f"cannot read image {where}: {type(e).__name__}: {e}") from e


def decode_all(items, image_size: int, num_threads: int | None = None) -> np.ndarray:
    """Decodes [(payload, where)] into uint8[N, S, S, 3] with a thread pool."""
    out = np.empty((len(items), image_size, image_size, 3), np.uint8)

    def work(start):
        for i in range(start, min(start + _CHUNK, len(items))):
            out[i] = _decode(items[i][0], items[i][1], image_size)

    workers = num_threads or min(32, (os.cpu_count() or 1) + 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(work, s) for s in range(0, len(items), _CHUNK)]:
            future.result()
    return out


def _to_dataset(split, class_names, image_size: int, origin: str) -> ArrayDataset:
    classes, files = split
    counts = {name: 0 for name in classes}
    for name, _, _, _ in files:
        counts[name] = counts.get(name, 0) + 1
    for name, where in sorted(classes.items()):
        check(counts.get(name, 0) > 0, f"{origin}: empty class folder {where}")
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(counts) - set(index))
    check(not unknown, f"{origin}: test classes {unknown} are not training classes "
          f"{list(class_names)}")
    labels = np.array([index[f[0]] for f in files], np.int32)
    images = decode_all([(f[3], f[2]) for f in files], image_size)
    return ArrayDataset(images, labels)


def load(path: str, image_size: int = 32, test_path: str = "") -> RawData:
    """Reads an image-folder data set (see the module docstring for the layouts).

    Args:
        path: folder or tar archive (`config.data.path`).
        image_size: side of the square uint8 images returned.
        test_path: the test split's folder or archive when `path` has no test split.
    """
    found = find_splits(read_tree(path), path)
    if "class_root" in found:
        found = {"train": found["class_root"]}
    check("train" in found, f"config.data.path: {path} has no train/ folder or class folders")
    if "test" not in found:
        check(bool(test_path), f"config.data.path: {path} has no test/ (or val/) folder; "
              "set config.data.test_path to the test split's folder or archive")
        other = find_splits(read_tree(test_path), test_path)
        test = other.get("test", other.get("class_root"))
        check(test is not None, f"config.data.test_path: {test_path} has no test split")
        found["test"] = test
    class_names = tuple(sorted(found["train"][0] or {f[0] for f in found["train"][1]}))
    train = _to_dataset(found["train"], class_names, image_size, path)
    test = _to_dataset(found["test"], class_names, image_size, test_path or path)
    return RawData(train, test, class_names, None, origin=f"image folder {path}")

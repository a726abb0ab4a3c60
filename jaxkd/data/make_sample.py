"""Builds the bundled sample `jaxkd/data/sample/cifar10_sample.tar` from CIFAR-10 JPEGs.

Usage:
    python -m jaxkd.data.make_sample --src ../shared/data/cifar10-jpeg

Takes, for every class, the first `--train-per-class` files of `train.tar.gz` and the first
`--test-per-class` of `test.tar.gz` in sorted file-name order, and writes them to an
uncompressed tar with their original bytes (no re-encoding), in sorted order, with fixed
metadata (mtime 0, owner root, mode 0644, ustar format) so that the same input gives a
byte-identical archive. Prints the archive's sha256.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import tarfile

from absl import app, flags

from jaxkd.data import sample


def select(archive_path: str, per_class: int) -> dict[str, bytes]:
    """The first `per_class` files of each `<split>/<class>/` folder by sorted name."""
    by_class = collections.defaultdict(dict)
    with tarfile.open(archive_path, mode="r|*") as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 3:
                by_class[parts[1]][member.name] = archive.extractfile(member).read()
    chosen = {}
    for name in sorted(by_class):
        files = by_class[name]
        if len(files) < per_class:
            raise ValueError(f"{archive_path}: class {name} has {len(files)} < {per_class} files")
        for path in sorted(files)[:per_class]:
            chosen[path] = files[path]
    return chosen


def write(files: dict[str, bytes], out_path: str) -> str:
    """Writes `files` to an uncompressed, reproducible tar; returns its sha256."""
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    with tarfile.open(out_path, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(files[path]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            archive.addfile(info, io.BytesIO(files[path]))
    with open(out_path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    flags.DEFINE_string("src", None, "folder holding the CIFAR-10 JPEG train.tar.gz and "
                        "test.tar.gz", flag_values=fv)
    flags.DEFINE_string("out", sample.SAMPLE_ARCHIVE, "the archive to write", flag_values=fv)
    flags.DEFINE_integer("train-per-class", sample.TRAIN_PER_CLASS,
                         "training images per class", flag_values=fv)
    flags.DEFINE_integer("test-per-class", sample.TEST_PER_CLASS, "test images per class",
                         flag_values=fv)
    flags.mark_flags_as_required(["src"], flag_values=fv)


def make(src: str, out: str = sample.SAMPLE_ARCHIVE, *,
         train_per_class: int = sample.TRAIN_PER_CLASS,
         test_per_class: int = sample.TEST_PER_CLASS) -> None:
    """Writes the sample archive `out` from the JPEG archives in `src`; prints its sha256."""
    files = select(os.path.join(src, "train.tar.gz"), train_per_class)
    files.update(select(os.path.join(src, "test.tar.gz"), test_per_class))
    digest = write(files, out)
    print(f"wrote {len(files)} images ({os.path.getsize(out)} bytes) to {out}")
    print(f"sha256 {digest}")


def main(argv) -> None:
    """Entry point of `python -m jaxkd.data.make_sample` (absl's app.run)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    make(f.src, f.out, train_per_class=f["train-per-class"].value,
         test_per_class=f["test-per-class"].value)


if __name__ == "__main__":
    define_flags()
    app.run(main)

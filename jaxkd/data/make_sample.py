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

import argparse
import collections
import hashlib
import io
import os
import tarfile

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True,
                        help="folder holding the CIFAR-10 JPEG train.tar.gz and test.tar.gz")
    parser.add_argument("--out", default=sample.SAMPLE_ARCHIVE)
    parser.add_argument("--train-per-class", type=int, default=sample.TRAIN_PER_CLASS)
    parser.add_argument("--test-per-class", type=int, default=sample.TEST_PER_CLASS)
    args = parser.parse_args(argv)
    files = select(os.path.join(args.src, "train.tar.gz"), args.train_per_class)
    files.update(select(os.path.join(args.src, "test.tar.gz"), args.test_per_class))
    digest = write(files, args.out)
    print(f"wrote {len(files)} images ({os.path.getsize(args.out)} bytes) to {args.out}")
    print(f"sha256 {digest}")


if __name__ == "__main__":
    main()

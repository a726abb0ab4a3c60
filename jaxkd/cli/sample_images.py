"""A few test images of the bundled sample as JPEG files, to try `jaxkd predict` on.

    python -m jaxkd.cli.sample_images --out=DIR [--per_class=1]

Copies the first `--per_class` test images of each class out of the bundled sample
(`jaxkd/data/sample/cifar10_sample.tar`, original CIFAR-10 JPEGs) to
`DIR/<class>_<NNNN>.jpg`, bytes unchanged. These test images were never trained on.
"""

from __future__ import annotations

import pathlib
import sys

from absl import flags

from jaxkd.cli import common
from jaxkd.data import sample


def write_sample_images(out: str | pathlib.Path, per_class: int = 1) -> list[pathlib.Path]:
    """Writes the images (`jaxkd.data.sample.sample_test_images`) to `out/<class>_<NNNN>.jpg`; returns their
    paths, sorted."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, label, data in sample.sample_test_images(per_class):
        path = out / f"{label}_{pathlib.PurePosixPath(name).stem}.jpg"
        path.write_bytes(data)
        written.append(path)
    return sorted(written)


def main(argv: list[str]) -> int:
    fv = common.new_flags()
    flags.DEFINE_string("out", None, "Folder to write the images to.", flag_values=fv)
    flags.DEFINE_integer("per_class", 1, "Images per class.", lower_bound=1, flag_values=fv)
    flags.mark_flags_as_required(["out"], flag_values=fv)
    common.parse(fv, argv, __doc__)
    paths = write_sample_images(fv["out"].value, fv["per_class"].value)
    print(f"wrote {len(paths)} images to {fv['out'].value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""A few test images of the bundled sample as JPEG files, to try `jaxkd predict` on.

    python -m jaxkd.cli.sample_images --out=DIR [--per_class=1]

Copies the first `--per_class` test images of each class out of the bundled sample
(`jaxkd/data/sample/cifar10_sample.tar`, original CIFAR-10 JPEGs) to
`DIR/<class>_<NNNN>.jpg`, bytes unchanged. These test images were never trained on.
"""

from __future__ import annotations

import pathlib
import re
import sys
import tarfile

from absl import flags

from jaxkd.cli import common
from jaxkd.data import sample

_MEMBER = re.compile(r"^test/([A-Za-z0-9_-]+)/([0-9]+)\.jpg$")


def write_sample_images(out: str | pathlib.Path, per_class: int = 1) -> list[pathlib.Path]:
    """Writes the images; returns their paths, sorted."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    taken: dict[str, int] = {}
    written = []
    with tarfile.open(sample.SAMPLE_ARCHIVE) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            match = _MEMBER.match(member.name)
            if not member.isfile() or match is None:
                continue
            name = match.group(1)
            if taken.get(name, 0) >= per_class:
                continue
            taken[name] = taken.get(name, 0) + 1
            path = out / f"{name}_{match.group(2)}.jpg"
            path.write_bytes(tar.extractfile(member).read())
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

"""A reference run of a tiny baseline, shared by the checkpoint and determinism tests."""

import pytest

from jaxkd import run as run_lib
from tests.helpers import tiny_config, write_tiny_npz


def reference_config(npz, **changes):
    """The tiny baseline: 2 epochs of 4 steps, a periodic checkpoint every 2 steps."""
    return tiny_config(npz, checkpoint_every_steps=2, **changes)


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
    """(npz, workdir) of an uninterrupted reference run on the 4 test devices."""
    base = tmp_path_factory.mktemp("reference")
    npz = write_tiny_npz(base / "tiny.npz")
    run_lib.run(reference_config(npz), base / "run")
    return npz, base / "run"

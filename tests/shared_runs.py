"""Tiny finished runs that several test modules read: each is made once per test session
(by the first module that asks) in a session temporary folder, then shared.

Tests only read them; a test that changes a run (removes a file, reruns it) works on a
copy (`shutil.copytree`), or, for the grid, restores what it changed.
"""

from __future__ import annotations

import pathlib
import textwrap

from jaxkd import analysis, grid
from jaxkd import run as run_lib
from jaxkd.config import default_config
from tests.helpers import write_tiny_npz

REPO = pathlib.Path(__file__).resolve().parents[1]
_MADE: dict = {}


def tiny_sd_config():
    """ResNet-8 on 160 sample images, 2 mini-generations of 1 epoch each, T = 2."""
    c = default_config()
    c.method = "snapshot_distillation"
    c.model = "resnet8"
    c.data.source = "sample"
    c.data.train_per_class = 16
    c.batch_size = 32
    c.eval_batch_size = 200
    c.num_epochs = 2
    c.snapshot.cycles = 2
    c.snapshot.temperature = 2.0
    c.log_every_steps = 2
    c.progress_bar = False
    return c


def tiny_sd_workdir(tmp_path_factory) -> pathlib.Path:
    """A finished `tiny_sd_config()` run (phases cycle1, cycle2; its report written by
    run() itself)."""
    if "sd" not in _MADE:
        path = tmp_path_factory.mktemp("sd_tiny")
        run_lib.run(tiny_sd_config(), path)
        _MADE["sd"] = path
    return _MADE["sd"]


def tiny_sd_evaluation(tmp_path_factory) -> analysis.Evaluation:
    """`analysis.evaluate_workdir` of `tiny_sd_workdir` on the test split, with features."""
    if "sd_evaluation" not in _MADE:
        _MADE["sd_evaluation"] = analysis.evaluate_workdir(
            tiny_sd_workdir(tmp_path_factory), "test", features=True)
    return _MADE["sd_evaluation"]


def tiny_grid_file(tmp_path_factory) -> pathlib.Path:
    """A grid file of two tiny configs: 'base' (1 epoch) and 'sd' (2 cycles)."""
    if "grid_file" not in _MADE:
        tmp = tmp_path_factory.mktemp("grid")
        npz = write_tiny_npz(tmp / "tiny.npz")
        path = tmp / "tiny_grid.py"
        path.write_text(textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(REPO)!r})
            from tests.helpers import tiny_config

            def get_grid():
                return {{"base": tiny_config({str(npz)!r}, num_epochs=1),
                         "sd": tiny_config({str(npz)!r}, "snapshot_distillation",
                                           **{{"snapshot.cycles": 2}})}}
        """))
        _MADE["grid_file"] = path
    return _MADE["grid_file"]


def tiny_grid_root(tmp_path_factory) -> pathlib.Path:
    """The tiny grid (2 configs x 2 seeds) run in this process."""
    if "grid_root" not in _MADE:
        root = tmp_path_factory.mktemp("root")
        failures = grid.run_grid(str(tiny_grid_file(tmp_path_factory)), root, [0, 1],
                                 report=False, isolate=False)
        assert failures == 0
        _MADE["grid_root"] = root
    return _MADE["grid_root"]

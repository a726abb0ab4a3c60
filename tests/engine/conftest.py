"""Fixtures the engine tests share: the tiny data set and one snapshot-distillation run
(2 cycles of 1 epoch) whose records and log lines test_loop.py and test_progress.py read."""
import logging

import pytest

from jaxkd import run as run_lib
from tests.helpers import tiny_config, write_tiny_npz


@pytest.fixture(scope="session")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


class _ListHandler(logging.Handler):
    """Keeps the messages (caplog for a session-scoped fixture)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture(scope="session")
def sd_run(npz, tmp_path_factory):
    """Snapshot distillation, 2 cycles of 1 epoch: cycle2 continues cycle1's optimiser
    count and is taught by it (loss = (1 + 1/T) CE + KL)."""
    workdir = tmp_path_factory.mktemp("sd")
    config = tiny_config(npz, "snapshot_distillation", num_epochs=2,
                         **{"snapshot.cycles": 2, "schedule.base_lr": 0.05})
    handler = _ListHandler()
    logger = logging.getLogger("jaxkd")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        run_lib.run(config, workdir)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    return workdir, config, handler.lines

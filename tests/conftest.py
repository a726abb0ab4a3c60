"""Shared test set-up: four fake CPU devices so sharding is real, and paths to shared data."""
import os
import pathlib

# Must happen before jax is imported anywhere in the test process.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Identical programs (the same tiny model in many tests) compile once per machine.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "/tmp/jaxkd_test_compilation_cache")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest  # noqa: E402

from tests import shared_runs  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The real CIFAR data beside the clone; tests that need it skip with a reason if absent."""
    if not SHARED_DATA.is_dir():
      pytest.skip(f"real data not found at {SHARED_DATA} (CI has it beside the clone)")
    return SHARED_DATA


# -- tiny finished runs several test modules read (made once per session: shared_runs) ----
@pytest.fixture(scope="session")
def sd_workdir(tmp_path_factory):
    """The shared finished SD run (cycle1, cycle2), read only (`shared_runs`)."""
    return shared_runs.tiny_sd_workdir(tmp_path_factory)


@pytest.fixture(scope="session")
def sd_evaluation(tmp_path_factory):
    """`evaluate_workdir` of `sd_workdir` on the test split, with features."""
    return shared_runs.tiny_sd_evaluation(tmp_path_factory)


@pytest.fixture(scope="session")
def grid_file(tmp_path_factory):
    return shared_runs.tiny_grid_file(tmp_path_factory)


@pytest.fixture(scope="session")
def grid_root(tmp_path_factory):
    """The tiny grid (2 configs x 2 seeds), run once per session."""
    return shared_runs.tiny_grid_root(tmp_path_factory)


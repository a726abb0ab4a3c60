"""Fixtures of the data tests: the 4-device mesh (conftest at the top sets 4 fake CPUs)."""
import jax
import numpy as np
import pytest
from jax.sharding import Mesh


@pytest.fixture(scope="module")
def mesh():
    assert len(jax.devices()) == 4, "conftest sets 4 fake CPU devices"
    return Mesh(np.array(jax.devices()), ("data",))

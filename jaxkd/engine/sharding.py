"""Data parallelism with `jax.jit` and `NamedSharding` over a ('data',) mesh.

The batch is split along the mesh axis; the student state and the teacher's variables are
replicated. The mesh spans every device of every host; multi-host runs start with
`initialize_distributed()`. No `pmap`.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def initialize_distributed(*, heartbeat_timeout_seconds: int = 30) -> bool:
    """Joins a multi-process run when the environment describes one.

    Reads `JAXKD_COORDINATOR` (host:port), `JAXKD_NUM_PROCESSES` and `JAXKD_PROCESS_ID`;
    on managed clusters (TPU pods, SLURM) where JAX detects the cluster by itself, set
    `JAXKD_DISTRIBUTED=auto`. A lost peer is detected by the coordination service's
    heartbeat, so the survivors exit with an error instead of hanging.

    Returns:
        True when `jax.distributed.initialize` was called.
    """
    coordinator = os.environ.get("JAXKD_COORDINATOR")
    if coordinator:
        if jax.default_backend() == "cpu" or os.environ.get("JAX_PLATFORMS") == "cpu":
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=int(os.environ["JAXKD_NUM_PROCESSES"]),
            process_id=int(os.environ["JAXKD_PROCESS_ID"]),
            heartbeat_timeout_seconds=heartbeat_timeout_seconds)
        return True
    if os.environ.get("JAXKD_DISTRIBUTED") == "auto":
        jax.distributed.initialize()
        return True
    return False


def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D ('data',) mesh over the first `num_devices` devices (0: all, on all hosts)."""
    devices = jax.devices()
    if num_devices:
        if num_devices > len(devices):
            raise ValueError(f"config.num_devices={num_devices} but only {len(devices)} "
                             f"devices are visible")
        devices = devices[:num_devices]
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the mesh."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array (state, teacher variables)."""
    return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh, field: str = "config.batch_size") -> None:
    """Raises a ValueError naming `field` when the batch does not split evenly."""
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(f"{field}={batch_size} is not divisible by the {n} devices of the "
                         f"mesh; use a multiple of {n}")


def replicate(tree, mesh: Mesh):
    """Places a pytree of arrays replicated on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))

"""Data parallelism with `jax.jit` and `NamedSharding` over a ('data',) mesh.

The batch is split along the mesh axis; the student state and the teacher's variables are
replicated. The mesh spans every device of every host; multi-host runs start with
`initialize_distributed()`. No `pmap`.

Packed seeds (`config.num_seeds`) use a ('runs', 'data') mesh: the stacked states,
teachers and keys are split along their leading run axis over 'runs', and each run's batch
over 'data' (`runs_axis_size` chooses the split).
"""

from __future__ import annotations

import math
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxkd.engine import rendezvous

# The mesh's axes; their only definitions (jaxkd.data.batching imports them from here).
DATA_AXIS = "data"
RUNS_AXIS = "runs"   # packed seeds only


def initialize_distributed(*, heartbeat_timeout_seconds: int = 30,
                           init_timeout_seconds: int = 120) -> bool:
    """Joins a multi-process run when the environment describes one.

    Reads `JAXKD_COORDINATOR` (host:port), `JAXKD_NUM_PROCESSES` and `JAXKD_PROCESS_ID`;
    on managed clusters (TPU pods, SLURM) where JAX detects the cluster by itself, set
    `JAXKD_DISTRIBUTED=auto`. A lost peer is detected by the coordination service's
    heartbeat, so the survivors exit with an error instead of hanging;
    `JAXKD_HEARTBEAT_TIMEOUT_S` overrides `heartbeat_timeout_seconds`. Before JAX's own
    initialisation the processes check in with process 0 (`jaxkd.engine.rendezvous`), so a
    peer that never starts is named within `JAXKD_INIT_TIMEOUT_S` (default
    `init_timeout_seconds`) and every process exits instead of waiting 300 s.

    Returns:
        True when `jax.distributed.initialize` was called.
    """
    heartbeat_timeout_seconds = int(os.environ.get("JAXKD_HEARTBEAT_TIMEOUT_S",
                                                   heartbeat_timeout_seconds))
    coordinator = os.environ.get("JAXKD_COORDINATOR")
    if coordinator:
        num, index = int(os.environ["JAXKD_NUM_PROCESSES"]), int(os.environ["JAXKD_PROCESS_ID"])
        timeout = int(os.environ.get("JAXKD_INIT_TIMEOUT_S", init_timeout_seconds))
        # Every process checks in first, so a missing one is named within the bound
        # (JAX alone aborts after its own timeout without saying who is missing).
        rendezvous.await_peers(coordinator, num_processes=num, process_id=index,
                               timeout_s=timeout,
                               port=int(os.environ.get("JAXKD_RENDEZVOUS_PORT", 0)))
        # Cross-process collectives of the CPU backend (a no-op for accelerators). Nothing
        # may touch a backend before `initialize` (not even `jax.default_backend()`).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num, process_id=index,
            initialization_timeout=timeout,
            heartbeat_timeout_seconds=heartbeat_timeout_seconds)
        return True
    if os.environ.get("JAXKD_DISTRIBUTED") == "auto":
        jax.distributed.initialize()
        return True
    return False


def host_cpu_devices(batch_sizes: tuple[int, ...], cores: int, requested: int = 0) -> int:
    """How many CPU devices to split this host into for data parallelism.

    The largest n <= `cores` that divides every batch size (each device runs its own shard
    of the step on its own thread), at least `requested` (`config.num_devices`).
    """
    n = max(1, min(cores, *batch_sizes))
    while any(b % n for b in batch_sizes):
        n -= 1
    return max(n, requested)


def split_host_cpu(config, cores: int | None = None) -> int:
    """Gives the CPU backend one device per core (data parallel on the host), if allowed.

    XLA's CPU step keeps two cores only about 2/3 busy (one stream of ops, parallel only
    inside a convolution); a `('data',)` mesh over one CPU device per core runs the shards
    side by side: ResNet-20 KD steps 1.25x, ResNet-8 steps 1.8x faster on 2 cores
    (BENCHMARKS.md). Only the CPU backend is affected: accelerator runs are unchanged.
    Must run before anything initialises a JAX backend; does nothing (returns 0) when
    `XLA_FLAGS` already sets `--xla_force_host_platform_device_count`, or for a
    multi-process run.

    Returns:
        The number of CPU devices set, or 0 when left alone.
    """
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "") or \
            os.environ.get("JAXKD_COORDINATOR") or os.environ.get("JAXKD_DISTRIBUTED"):
        return 0
    cores = cores or len(os.sched_getaffinity(0))
    n = host_cpu_devices((config.batch_size, config.eval_batch_size), cores,
                         max(config.num_devices, 0))
    jax.config.update("jax_num_cpu_devices", n)
    return n


def make_mesh(num_devices: int = 0, runs: int | None = None) -> Mesh:
    """A 1-D ('data',) mesh over the first `num_devices` devices (0: all, on all hosts);
    with `runs` (packed seeds), a ('runs', 'data') mesh of `runs` groups of devices."""
    devices = jax.devices()
    if num_devices:
        if num_devices > len(devices):
            raise ValueError(f"config.num_devices={num_devices} but only {len(devices)} "
                             f"devices are visible")
        devices = devices[:num_devices]
    if runs is None:
        return Mesh(np.asarray(devices), (DATA_AXIS,))
    return Mesh(np.asarray(devices).reshape(runs, -1), (RUNS_AXIS, DATA_AXIS))


def runs_axis_size(num_seeds: int, num_devices: int, process_count: int = 1) -> int:
    """How many groups of devices `num_seeds` packed runs spread over.

    On one host, gcd(num_seeds, num_devices): 4 seeds on 4 devices train one run per
    device (no cross-device traffic in a step), 2 seeds on 4 devices a run per pair of
    devices (each run data-parallel over its pair), 3 seeds on 4 devices every run over
    every device. Across hosts every device holds every run (1), as unpacked runs hold
    their state: the host reads each run's metrics and final state from its own devices.
    """
    return math.gcd(num_seeds, num_devices) if process_count == 1 else 1


def runs_axis(mesh: Mesh) -> str | None:
    """The mesh's run axis name, or None for a ('data',) mesh."""
    return RUNS_AXIS if RUNS_AXIS in mesh.axis_names else None


def data_parallel_size(mesh: Mesh) -> int:
    """The number of devices one batch is split over (the 'data' axis)."""
    return mesh.shape[DATA_AXIS]


def batch_sharding(mesh: Mesh, *, packed: bool = False) -> NamedSharding:
    """The batch axis split over the mesh: the leading axis, or the second one of a
    packed batch (`config.num_seeds`: a leading run axis over 'runs', each run's batch
    over 'data')."""
    return NamedSharding(mesh, P(runs_axis(mesh), DATA_AXIS) if packed else P(DATA_AXIS))


def run_sharded(mesh: Mesh, *, leading: int = 0) -> NamedSharding:
    """Stacked per-run arrays (states, teachers, keys, metrics) split along their run
    axis over 'runs' (replicated on a ('data',) mesh); `leading` axes before it (a
    chunk's step axis) are not split."""
    return NamedSharding(mesh, P(*[None] * leading, runs_axis(mesh)))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array (state, teacher variables)."""
    return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh, field: str = "config.batch_size") -> None:
    """Raises a ValueError naming `field` unless the batch is a positive integer that
    splits evenly over the mesh's data-parallel devices."""
    if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
        raise ValueError(f"{field} must be a positive integer, got {batch_size!r}")
    n = data_parallel_size(mesh)
    if batch_size % n:
        raise ValueError(f"{field}={batch_size} is not divisible by the {n} devices of the "
                         f"mesh; use a multiple of {n}")


def replicate(tree, mesh: Mesh):
    """Places a pytree of arrays replicated on every device of the mesh.

    Every process passes the same values (same seed, same checkpoint). In a multi-process
    run they are placed without comparing them across processes: `jax.device_put` would
    run one collective per leaf to check (minutes for a large model on a busy machine).
    """
    sharding = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)
    return jax.tree_util.tree_map(lambda x: _replicate_leaf(x, sharding), tree)


def _replicate_leaf(x, sharding: NamedSharding):
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if not x.is_fully_replicated:
            return jax.device_put(x, sharding)
        x = x.addressable_data(0)
    if not isinstance(x, (jax.Array, np.ndarray)):
        return jax.device_put(x, sharding)   # Python scalars (a fresh state's step)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

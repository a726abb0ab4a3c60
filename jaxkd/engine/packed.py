"""Packed seeds: the same phase of N runs trained as one program (`config.num_seeds`).

Papers of this field are compared by mean +- std over seeds, and a CIFAR network leaves most
of a modern accelerator idle. With `config.num_seeds = N` every phase trains the N runs
`config.seed + i` at once: their TrainStates are stacked along a leading run axis and the
train step is mapped over it (`jaxkd.engine.step.map_runs`, `packed=True`: `jax.vmap` on
accelerators, a loop inside the program on XLA:CPU). Each run keeps
what it would have alone: its own init, data order, augmentation keys and normalisation
(its own pipeline, `PackedPipeline`), its own BatchNorm statistics, its own teacher (the
runs' teachers are stacked too) and its own non-finite guard (a run's non-finite step is
not applied to that run only; the others' steps are unaffected).

While a phase trains, its periodic checkpoints hold the stacked state
(`<workdir>/packed/<phase>/`), so a resumed packed run continues bit-exactly. When it ends,
each run's final state, anchors, metrics and record go to that run's own workdir
(`<workdir>/seeds/<seed>/`), a complete single-run workdir: `jaxkd evaluate`, `export`,
reports, ensembles and the next phase's teachers read it as if it had been trained alone.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import shutil
import time
import types
from typing import Any, Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxkd import checkpoints, plateau
from jaxkd import workdir as workdir_lib
from jaxkd.engine import loop, sharding
from jaxkd.engine.writer import MetricWriter

log = logging.getLogger(__name__)


def stack(trees: Sequence[Any], mesh) -> Any:
    """One pytree whose leaves stack the runs' leaves along a new leading axis, split
    over `mesh`'s 'runs' axis (`sharding.run_sharded`: states, teachers, keys). The runs'
    trees have one structure; static fields (a TrainState's optimiser and apply_fn) are
    the first run's."""
    return _stack(trees, sharding.run_sharded(mesh))


def _stack(trees: Sequence[Any], out_sharding) -> Any:
    treedef = jax.tree_util.tree_structure(trees[0])
    leaves = [jax.tree_util.tree_leaves(t) for t in trees]
    return jax.tree_util.tree_unflatten(
        treedef, [stack_leaves(xs, out_sharding) for xs in zip(*leaves)])


def stack_leaves(xs: Sequence[Any], out_sharding) -> jax.Array:
    """The runs' arrays `xs` stacked into one array placed as `out_sharding`, with no
    cross-device traffic: each device stacks its own copies of its own runs' arrays.

    The runs' arrays are laid out as the stacked array's trailing axes (replicated, or a
    batch split over 'data'), as the runs' own workspaces place them on the same mesh.
    Host values (a fresh state's step) are placed from the host. (A jitted `jnp.stack`
    would reshard replicated inputs with all-to-alls over the devices.)
    """
    shape = (len(xs),) + tuple(np.shape(xs[0]))
    if not all(isinstance(x, jax.Array) for x in xs):
        host = np.stack([np.asarray(x) for x in xs])
        return jax.make_array_from_callback(shape, out_sharding, lambda index: host[index])
    trailing = NamedSharding(out_sharding.mesh, P(*out_sharding.spec[1:]))
    xs = [x if x.sharding.is_equivalent_to(trailing, x.ndim) else jax.device_put(x, trailing)
          for x in xs]   # e.g. a key made on the default device
    shards = [{s.device: s.data for s in x.addressable_shards} for x in xs]
    arrays = []
    for device, index in out_sharding.addressable_devices_indices_map(shape).items():
        arrays.append(jnp.stack([shards[r][device] for r in range(len(xs))[index[0]]]))
    return jax.make_array_from_single_device_arrays(shape, out_sharding, arrays)


def unstack(tree: Any, runs: int, mesh) -> list[Any]:
    """The runs of a stacked pytree, one pytree each, replicated over `mesh` as an
    unpacked run's (inverse of `stack`)."""
    split = jax.jit(lambda t: [jax.tree_util.tree_map(lambda x, i=i: x[i], t)
                               for i in range(runs)],
                    out_shardings=sharding.replicated(mesh))
    return split(tree)


def run_values(tree: Any, run: int) -> Any:
    """Run `run`'s values of fetched per-run metrics (every leaf has a run axis)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[run], tree)


class PackedPipeline:
    """The pipelines of N runs as one `jaxkd.data.Pipeline` of stacked batches.

    Every batch, evaluation batch and set of `train_inputs` has a leading run axis; run i's
    slice is exactly what run i's own pipeline gives. All runs share the sizes (one config).
    """

    def __init__(self, pipelines: Sequence[Any], mesh):
        first = pipelines[0]
        self.pipelines = list(pipelines)
        self.steps_per_epoch, self.num_train = first.steps_per_epoch, first.num_train
        self.batch_size = first.batch_size
        self.traceable_batches = all(p.traceable_batches for p in pipelines)
        self.batch_at = getattr(first, "batch_at", None)   # its arguments carry the run's
        self._stack_batch = sharding.batch_sharding(mesh, packed=True)
        self._stack_inputs = sharding.run_sharded(mesh)
        self._fixed_inputs = None   # the epoch-independent part of `train_inputs`

    def num_eval(self, split: str = "test") -> int:
        return self.pipelines[0].num_eval(split)

    def eval_batch(self, split: str = "test") -> int:
        return self.pipelines[0].eval_batch(split)

    def eval_steps(self, split: str = "test") -> int:
        return self.pipelines[0].eval_steps(split)

    def train_batches(self, epoch: int, start_step: int = 0) -> Iterator[dict]:
        for batches in zip(*(p.train_batches(epoch, start_step) for p in self.pipelines)):
            yield _stack(batches, self._stack_batch)

    def eval_batches(self, split: str = "test") -> Iterator[dict]:
        for batches in zip(*(p.eval_batches(split) for p in self.pipelines)):
            yield _stack(batches, self._stack_batch)

    def train_inputs(self, epoch: int) -> dict:
        """The runs' `train_inputs(epoch)`, stacked (the data arrays once, the orders per
        epoch)."""
        inputs = [p.train_inputs(epoch) for p in self.pipelines]
        if self._fixed_inputs is None:
            self._fixed_inputs = _stack(
                [{k: v for k, v in i.items() if k != "order"} for i in inputs],
                self._stack_inputs)
        return dict(self._fixed_inputs,
                    order=_stack([i["order"] for i in inputs], self._stack_inputs))


@dataclasses.dataclass
class SeedRun:
    """One packed run's own places: its seed, its workdir's phase folder and writer."""

    seed: int
    phase_dir: pathlib.Path
    writer: MetricWriter


class SeedWriters:
    """The runs' metric writers behind the one writer a `PhaseContext` holds."""

    def __init__(self, writers: Sequence[MetricWriter]):
        self.writers = list(writers)

    def drop_after(self, phase: str, step: int) -> int:
        return max(w.drop_after(phase, step) for w in self.writers)

    def flush(self) -> None:
        for w in self.writers:
            w.flush()

    def close(self) -> None:
        for w in self.writers:
            w.close()


class PackedTrainer(loop.PhaseTrainer):
    """The epoch loop of one phase of N packed runs (`loop.PhaseTrainer`, run by run where
    a run's records differ: training windows, evaluations, anchors).

    A run's non-finite step is never applied to it (the vmapped guard) while the others
    train on, whatever `config.nonfinite` says: stopping would stop every run. A run whose
    every step of an epoch was non-finite has diverged: it is reported, keeps its last
    finite state and is marked in its record; the phase stops (NonFiniteError) only when
    every run has diverged.
    """

    def __init__(self, *args, runs: Sequence[SeedRun], **kwargs):
        super().__init__(*args, **kwargs)
        self.runs = list(runs)
        self.diverged: list[int] = []   # seeds

    def _stop_if_nonfinite(self, window, local0: int) -> None:
        """Packed runs never stop on one run's non-finite step (see the class)."""

    def _log_train(self, window, local0, progress, t0, bar) -> np.ndarray:
        """Logs a window to every run's metrics.jsonl; returns each run's skipped steps."""
        fetched = jax.device_get(list(window))
        means = [loop.check_finite([run_values(m, i) for m in fetched],
                                   f"{self.phase.name} (seed {run.seed})", local0,
                                   _SKIP, self.last_ckpt)
                 for i, run in enumerate(self.runs)]
        ips = len(window) * self.ctx.config.batch_size / max(time.perf_counter() - t0, 1e-9)
        lr = self.lr_at(local0 + len(window))
        for i, (run, m) in enumerate(zip(self.runs, means)):
            rec = dict(phase=self.phase.name, kind="train", step=local0 + len(window),
                       images_per_sec=ips, **m)
            if lr is not None:
                rec["lr"] = lr[i] if isinstance(lr, list) else lr
            run.writer.write(rec)
        if bar is not None:
            bar.set_postfix(loss=f"{np.mean([m['loss'] for m in means]):.3f}",
                            img_s=f"{ips * len(self.runs):.0f}")
        return np.asarray([m["skipped"] for m in means])

    def _check_epoch_trained(self, epoch: int, skipped, logged: int) -> None:
        """Marks the runs whose every step of the epoch was non-finite as diverged; stops
        only when every run has (`loop.PhaseTrainer._check_epoch_trained`)."""
        skipped = np.broadcast_to(np.asarray(skipped), (len(self.runs),))
        for run, n in zip(self.runs, skipped):
            if logged and n == logged and run.seed not in self.diverged:
                self.diverged.append(run.seed)
                log.warning("phase %s, seed %d: every step of epoch %d was non-finite; "
                            "this run has diverged (its last finite state is kept) while "
                            "the other packed runs train on", self.phase.name, run.seed,
                            epoch + 1)
        super()._check_epoch_trained(epoch, int(skipped.min()), logged)

    def _run_results(self, totals: dict, epoch: int, kind: str) -> list[dict]:
        """Each run's evaluation at the end of `epoch`, written to its metrics.jsonl."""
        results = [self._epoch_result(run_values(totals, i), epoch)
                   for i in range(len(self.runs))]
        for run, res in zip(self.runs, results):
            run.writer.write(dict(phase=self.phase.name, kind=kind, **res))
        return results

    def _record_evaluation(self, totals: dict, epoch: int,
                           progress: loop.Progress) -> tuple[str, str]:
        results = self._run_results(totals, epoch, "eval")
        for history, res in zip(progress.history, results):
            history.append(res)
        texts = [f"seed {run.seed}: {loop.accuracy_text(res)}"
                 for run, res in zip(self.runs, results)]
        return "; ".join(texts), f"{len(self.runs)} x {results[-1]['count']}"

    def _record_heldout(self, totals: dict, epoch: int, progress: loop.Progress):
        """Each run's held-out evaluation (`loop.PhaseTrainer._record_heldout`); returns
        the runs' mean losses."""
        results = self._run_results(totals, epoch, "heldout")
        for heldout, res in zip(progress.heldout, results):
            heldout.append(res["loss"])
        return np.asarray([res["loss"] for res in results])

    def _save_anchor(self, epoch: int) -> None:
        states = unstack(self.state, len(self.runs), self.ctx.mesh)
        for run, state in zip(self.runs, states):
            ckpts = checkpoints.PhaseCheckpoints(run.phase_dir)
            ckpts.save_anchor(epoch, state)
            ckpts.close()


_SKIP = types.SimpleNamespace(nonfinite="skip")   # per-run window checks never raise


def train_packed_phase(ctx: loop.PhaseContext, phase, model, init_state, *,
                       teacher: loop.Teacher | None, key, runs: Sequence[SeedRun],
                       start_step: int = 0, schedule: Callable | None = None):
    """Trains one phase of packed runs to its end, resuming from its newest stacked
    checkpoint (see `loop.train_phase`; every argument state, teacher and key is stacked).

    Returns:
        (final stacked state, one record per run), after each run's final checkpoint is
        committed in its own workdir (a run whose final exists already, from a run cut
        short while writing them, is not written again: it holds the same state).
    """
    ckpts = checkpoints.PhaseCheckpoints(workdir_lib.packed_dir(ctx.workdir, phase.name),
                                         keep=ctx.config.keep_checkpoints)
    trainer = None
    progress = loop.Progress(start_step, [[] for _ in runs], heldout=[[] for _ in runs])
    restored = ckpts.restore_latest(checkpoints.abstract_like(init_state))
    state = init_state
    if restored is not None:
        state, meta = restored
        progress = loop.Progress.from_meta(meta)
        progress.history = [list(h) for h in progress.history]
        progress.heldout = [list(h) for h in progress.heldout] or [[] for _ in runs]
        ctx.writer.drop_after(phase.name, meta["step"] - meta["start_step"])
        log.info("phase %s: %d packed runs resumed at step %d", phase.name, len(runs),
                 meta["step"])
    else:
        ctx.writer.drop_after(phase.name, 0)
    trainer = PackedTrainer(ctx, phase, model, state, teacher, ckpts, key, runs=runs,
                            schedule=schedule, start_step=progress.start_step)
    try:
        progress = trainer.run(progress)
    except BaseException:
        if jax.process_count() == 1:
            ckpts.close()
        raise
    ckpts.wait()
    step = trainer._step()
    records = []
    for run, run_state, history, heldout in zip(
            runs, unstack(trainer.state, len(runs), ctx.mesh), progress.history,
            progress.heldout):
        layout = workdir_lib.PhaseLayout(run.phase_dir)
        record = dict(name=phase.name, role=phase.role, model=phase.model,
                      **loop.history_summary(history, phase.num_epochs),
                      **plateau.summary(heldout),
                      wall_time=progress.wall_time, history=history,
                      checkpoint=str(layout.final), seed=run.seed,
                      diverged=run.seed in trainer.diverged)
        records.append(record)
        final = checkpoints.PhaseCheckpoints(run.phase_dir)
        if not final.has_final():
            meta = dict(step=step, start_step=progress.start_step, history=history,
                        wall_time=progress.wall_time, pending=[], heldout=heldout,
                        record=record)
            final.save_final(run_state, meta)
        final.close()
        log.info("phase %s, seed %d: final checkpoint committed (parameters fingerprint "
                 "%s)", phase.name, run.seed, loop.fingerprint(run_state.params))
    ckpts.close()
    ctx.writer.flush()
    if jax.process_index() == 0:   # every run's final is committed: the stack is spent
        shutil.rmtree(workdir_lib.packed_dir(ctx.workdir, phase.name), ignore_errors=True)
    return trainer.state, records

"""The one module that talks to orbax: periodic and final checkpoints of a phase.

Layout of a phase directory::

    <workdir>/phases/<phase>/ckpt/<step>/   periodic (async, keep a few), state + meta
    <workdir>/phases/<phase>/final/<step>/  the phase's immutable final checkpoint

Every write goes through orbax's commit protocol (a temporary directory renamed when
complete), so a crash leaves either the previous checkpoint or the new one, never half of
one. A final checkpoint is written once and never rewritten. Restores are checked against
the expected tree (structure, shapes, dtypes): a checkpoint of another model is an error,
and an unreadable one is skipped with a warning naming it.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)

_ITEMS = ("state", "meta")


class CheckpointError(ValueError):
    """A checkpoint exists but cannot be used (corrupt, or of another model)."""


def _manager(directory: pathlib.Path, *, keep: int | None, async_save: bool):
    """A manager of `state` + `meta` step folders keeping the newest `keep` (None: all)."""
    options = ocp.CheckpointManagerOptions(
        create=True, enable_async_checkpointing=async_save, cleanup_tmp_directories=True,
        **_keep_newest(keep))
    registry = _handler_registry()
    if registry is None:   # an orbax without handler registries
        return ocp.CheckpointManager(directory.absolute(), options=options, item_names=_ITEMS)
    return ocp.CheckpointManager(directory.absolute(), options=options,
                                 handler_registry=registry)


def _keep_newest(keep: int | None) -> dict:
    """Options keeping the `keep` newest steps: orbax's `preservation_policy` where it
    exists (`max_to_keep` is deprecated in its favour), else `max_to_keep`."""
    if keep is None:
        return {}
    latest_n = getattr(getattr(ocp, "checkpoint_managers", None), "LatestN", None)
    fields = getattr(ocp.CheckpointManagerOptions, "__dataclass_fields__", {})
    if latest_n is not None and "preservation_policy" in fields:
        return {"preservation_policy": latest_n(n=keep)}
    return {"max_to_keep": keep}


def _handler_registry():
    """The `state` (standard pytree) and `meta` (JSON) items as a handler registry (the
    manager's `item_names` is deprecated in its favour); None where orbax has none. Same
    handlers and on-disk layout as `item_names` resolved from the args."""
    registry_cls = getattr(getattr(ocp, "handlers", None), "DefaultCheckpointHandlerRegistry",
                           None)
    if registry_cls is None:
        return None
    registry = registry_cls()
    for item, args in (("state", ocp.args.StandardSave), ("state", ocp.args.StandardRestore),
                       ("meta", ocp.args.JsonSave), ("meta", ocp.args.JsonRestore)):
        registry.add(item, args)
    return registry


def _save_args(state, meta: dict):
    return ocp.args.Composite(state=ocp.args.StandardSave(state),
                              meta=ocp.args.JsonSave(meta))


def _restore_args(abstract_state):
    return ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                              meta=ocp.args.JsonRestore())


def abstract_like(tree):
    """ShapeDtypeStructs (with shardings) describing `tree`, as a restore target."""
    return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)


def _check_same_tree(expected, found, where: str) -> None:
    exp = jax.tree_util.tree_map(lambda x: (tuple(x.shape), str(x.dtype)), expected)
    got = jax.tree_util.tree_map(lambda x: (tuple(x.shape), str(x.dtype)), found)
    if jax.tree_util.tree_structure(exp) != jax.tree_util.tree_structure(got) or exp != got:
        raise CheckpointError(f"checkpoint {where} does not match the model being trained "
                              f"(different tree structure, shapes or dtypes)")


def _restore_step(manager, step: int, abstract_state, where: str):
    try:
        restored = manager.restore(step, args=_restore_args(abstract_state))
    except Exception as err:  # orbax raises many types for damaged files
        raise CheckpointError(f"checkpoint {where} is unreadable: {type(err).__name__}: "
                              f"{str(err)[:300]}") from err
    _check_same_tree(abstract_state, restored.state, where)
    return restored.state, dict(restored.meta)


class PhaseCheckpoints:
    """Periodic and final checkpoints of one phase of a plan."""

    def __init__(self, phase_dir: pathlib.Path, *, keep: int = 3, async_save: bool = True):
        self.phase_dir = pathlib.Path(phase_dir)
        self._periodic = _manager(self.phase_dir / "ckpt", keep=keep, async_save=async_save)
        self._final = _manager(self.phase_dir / "final", keep=None, async_save=False)
        self._anchors = None

    def save(self, step: int, state, meta: dict) -> None:
        """Starts an asynchronous periodic save (the previous one is awaited first)."""
        self._periodic.save(step, args=_save_args(state, meta), force=True)

    def wait(self) -> None:
        """Blocks until every started save is committed to disk."""
        self._periodic.wait_until_finished()
        if self._anchors is not None:
            self._anchors.wait_until_finished()

    def restore_latest(self, abstract_state):
        """Restores the newest usable periodic checkpoint, skipping damaged ones.

        Damaged checkpoints newer than the one restored are moved to
        `<phase>/damaged/` (kept for inspection; the resumed run will save those steps
        again). When none is usable, nothing is moved.

        Returns:
            (state, meta), or None when no periodic checkpoint exists.

        Raises:
            CheckpointError: checkpoints exist but none is usable.
        """
        steps = sorted(self._periodic.all_steps(), reverse=True)
        errors = []
        for i, step in enumerate(steps):
            where = str(self.phase_dir / "ckpt" / str(step))
            try:
                restored = _restore_step(self._periodic, step, abstract_state, where)
            except CheckpointError as err:
                log.warning("skipping checkpoint: %s", err)
                errors.append(str(err))
                continue
            self._set_aside(steps[:i])
            return restored
        if errors:
            raise CheckpointError("no usable checkpoint in " + str(self.phase_dir / "ckpt") +
                                  ":\n  " + "\n  ".join(errors))
        return None

    def _set_aside(self, steps: list[int]) -> None:
        """Moves damaged periodic checkpoints out of the way of the steps to be redone."""
        if not steps:
            return
        if jax.process_index() == 0:
            damaged = self.phase_dir / "damaged"
            damaged.mkdir(exist_ok=True)
            for step in steps:
                target = damaged / f"ckpt-{step}-{time.strftime('%Y%m%d-%H%M%S')}"
                (self.phase_dir / "ckpt" / str(step)).rename(target)
                log.warning("moved the damaged checkpoint %s to %s",
                            self.phase_dir / "ckpt" / str(step), target)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils
            multihost_utils.sync_global_devices(f"jaxkd set aside {self.phase_dir}")
        self._periodic.reload()

    def save_anchor(self, epoch: int, state) -> None:
        """Keeps the state at the end of `epoch` for good (RCO's anchor points).

        A resumed run that redoes the epoch finds the anchor already written (it is
        identical, the run being deterministic) and leaves it alone. The save is committed
        before returning: the periodic checkpoint written after it must never be on disk
        without it (a run resumed from there would not redo the epoch).
        """
        if self._anchors is None:
            self._anchors = _manager(self.phase_dir / "anchors", keep=None, async_save=False)
        if epoch not in self._anchors.all_steps():
            self._anchors.save(epoch, args=_save_args(state, {"epoch": epoch}), force=True)
            self._anchors.wait_until_finished()

    def anchor_epochs(self) -> list[int]:
        """Epochs at which anchors were kept, ascending."""
        directory = self.phase_dir / "anchors"
        if not directory.is_dir():
            return []
        return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())

    def has_final(self) -> bool:
        return self._final.latest_step() is not None

    def save_final(self, state, meta: dict) -> None:
        """Writes the phase's final checkpoint once; an existing one is never rewritten."""
        self.wait()
        if self.has_final():
            raise CheckpointError(f"final checkpoint of {self.phase_dir} exists already")
        self._final.save(int(meta.get("step", 0)), args=_save_args(state, meta))
        self._final.wait_until_finished()

    def restore_final(self, abstract_state):
        """Returns (state, meta) of the final checkpoint."""
        step = self._final.latest_step()
        if step is None:
            raise CheckpointError(f"no final checkpoint in {self.phase_dir / 'final'}")
        try:
            return _restore_step(self._final, step, abstract_state,
                                 str(self.phase_dir / "final" / str(step)))
        except CheckpointError as err:
            raise CheckpointError(f"{err}\n{self._final_hint()}") from err

    def final_meta(self) -> dict[str, Any]:
        """The final checkpoint's JSON metadata, without reading any array."""
        step = self._final.latest_step()
        try:
            restored = self._final.restore(step, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore()))
            return dict(restored.meta)
        except Exception as err:  # orbax raises many types for damaged files
            raise CheckpointError(
                f"final checkpoint {self.phase_dir / 'final' / str(step)} is unreadable: "
                f"{type(err).__name__}: {str(err)[:300]}\n{self._final_hint()}") from err

    def _final_hint(self) -> str:
        return (f"A final checkpoint is never rewritten in place: delete "
                f"{self.phase_dir / 'final'} to train phase '{self.phase_dir.name}' again.")

    def close(self) -> None:
        self.wait()
        self._periodic.close()
        self._final.close()
        if self._anchors is not None:
            self._anchors.close()


def load_variables(path: str | pathlib.Path, abstract_variables):
    """Loads {'params', 'batch_stats'} from a phase directory or a final checkpoint path.

    Accepts a phase directory (`.../phases/<name>`), its `final` folder, or one step folder
    of it; the expected tree (from the model's `jax.eval_shape(init)`) both shapes the restore
    and proves the checkpoint belongs to that architecture.
    """
    step_dir = _step_dir(path, "teacher checkpoint")
    abstract_state = {"params": abstract_variables["params"],
                      "batch_stats": abstract_variables.get("batch_stats", {})}
    variables = _restore_variables(step_dir, abstract_state)
    _check_same_tree(abstract_state, variables, str(step_dir))
    return variables


def load_saved_variables(path: str | pathlib.Path, *, what: str = "checkpoint"
                         ) -> tuple[dict, pathlib.Path]:
    """{'params', 'batch_stats'} of a checkpoint with the shapes it was saved with.

    Accepts what `load_variables` accepts, plus an `anchors/<epoch>` folder (any step
    folder). No model is needed: the caller picks the subtrees it wants and checks them
    (`config.init`: [SD] Table 2's M#75 students, [BAN] Table 5's shared layers).

    Returns:
        (variables, the step folder read).
    """
    step_dir = _step_dir(path, what)
    return _restore_variables(step_dir, None), step_dir


def _step_dir(path: str | pathlib.Path, what: str) -> pathlib.Path:
    """The step folder a phase dir, its `final` folder or a step folder designates."""
    path = pathlib.Path(path).absolute()
    if not path.exists():
        raise CheckpointError(f"{what} {path} does not exist")
    if (path / "final").is_dir():
        path = path / "final"
    if path.name == "final" or not (path / "state").is_dir():
        steps = sorted(int(p.name) for p in path.iterdir() if p.name.isdigit())
        if not steps:
            raise CheckpointError(f"no checkpoint step folder under {path}")
        return path / str(steps[-1])
    return path


def _restore_variables(step_dir: pathlib.Path, abstract_state) -> dict:
    with ocp.StandardCheckpointer() as ckptr, _without_item_metadata_warning():
        try:
            tree = ckptr.restore(step_dir / "state", _partial_target(ckptr, step_dir,
                                                                     abstract_state))
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(f"checkpoint {step_dir} is unreadable or of another model: "
                                  f"{type(err).__name__}: {str(err)[:300]}") from err
    return {"params": tree["params"], "batch_stats": tree.get("batch_stats", {})}


class _DropItemMetadataWarning(logging.Filter):
    """Orbax warns that the item folder (`<step>/state`) has no `_CHECKPOINT_METADATA`
    when it is read on its own: that file lives one level up, written by the manager."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Metadata file does not exist")


@contextlib.contextmanager
def _without_item_metadata_warning():
    """Drops that warning while a step folder is read (orbax logs through absl)."""
    absl_logger, drop = logging.getLogger("absl"), _DropItemMetadataWarning()
    absl_logger.addFilter(drop)
    try:
        yield
    finally:
        absl_logger.removeFilter(drop)


def _partial_target(ckptr, step_dir: pathlib.Path, abstract_vars):
    """A restore target covering the whole saved TrainState, with the variables' shapes.

    Only params and batch_stats are used; the optimiser state is restored as saved.
    With `abstract_vars=None` params and batch_stats are restored as saved too.
    """
    meta = ckptr.metadata(step_dir / "state")
    tree = meta.item_metadata.tree if hasattr(meta, "item_metadata") else meta.tree
    if not isinstance(tree, dict) or "params" not in tree:
        raise CheckpointError(f"checkpoint {step_dir} holds no model parameters")
    # Replicated over this process's devices: a checkpoint written on another device count
    # (a CPU host split into one device per core, 8 TPU cores) restores here all the same.
    repl = jax.sharding.NamedSharding(jax.sharding.Mesh(jax.devices(), ("d",)),
                                      jax.sharding.PartitionSpec())

    def leaf(m):
        return jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=repl)

    is_leaf = lambda x: hasattr(x, "shape") and hasattr(x, "dtype")  # noqa: E731
    target = jax.tree_util.tree_map(leaf, tree, is_leaf=is_leaf)
    if abstract_vars is None:
        return target
    target["params"] = jax.tree_util.tree_map(leaf, abstract_vars["params"], is_leaf=is_leaf)
    target["batch_stats"] = jax.tree_util.tree_map(leaf, abstract_vars["batch_stats"],
                                                   is_leaf=is_leaf)
    return target

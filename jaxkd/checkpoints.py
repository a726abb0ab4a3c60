"""The one module that talks to orbax: periodic and final checkpoints of a phase.

A phase directory's folders (`ckpt/`, `final/`, `anchors/`, `damaged/`) are named by
`jaxkd.workdir.PhaseLayout`; each step folder also holds `digests.json`, the SHA-256 of
every other file of the step folder.

Every write goes through orbax's commit protocol (a temporary directory renamed when
complete), so a crash leaves either the previous checkpoint or the new one, never half of
one. A final checkpoint is written once and never rewritten. Restores are checked against
the expected tree (structure, shapes, dtypes): a checkpoint of another model is an error,
and an unreadable one is skipped with a warning naming it.

Digests. Orbax stores no checksums, so a flipped bit in an array file would restore
silently. Once orbax has committed a step, jaxkd writes `<step>/digests.json` (atomically:
a temporary file renamed) holding the size and SHA-256 of every other file of the step
folder. Every restore checks the folder against it first; a file that differs, is missing,
or is not in the manifest (or a manifest that cannot be parsed) makes the checkpoint
unreadable, exactly like a file orbax cannot read. A step without a manifest (written by
a jaxkd older than the digests, or whose process stopped between orbax's commit and the
manifest) is restored unverified, with a warning; jaxkd never writes a manifest for a step
it did not just save, since that would bless whatever is on disk now.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import pathlib
import shutil
import threading
import time
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from jaxkd import workdir as workdir_lib

log = logging.getLogger(__name__)

_ITEMS = ("state", "meta")


class CheckpointError(ValueError):
    """A checkpoint exists but cannot be used (corrupt, or of another model)."""


MANIFEST = "digests.json"
_MANIFEST_FORMAT = "jaxkd-checkpoint-digests"
_MANIFEST_VERSION = 1
_MANIFEST_TMP = "." + MANIFEST + ".tmp"     # prefix of the manifest's temporary file
_unverified_warned: set[str] = set()        # step folders already warned about


def _step_files(step_dir: pathlib.Path) -> list[str]:
    """The files of a step folder a manifest covers (relative POSIX paths, sorted)."""
    return sorted(p.relative_to(step_dir).as_posix() for p in step_dir.rglob("*")
                  if p.is_file() and p.name != MANIFEST
                  and not p.name.startswith(_MANIFEST_TMP))


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_room(directory: pathlib.Path, state, margin: float = 1.5) -> None:
    """Refuses a save that cannot fit: free space below `margin` times the state's bytes.

    A save that runs out of room fails inside orbax's writer threads, with a traceback per
    thread; checked first, a full disk is one OSError (ENOSPC) naming the folder, which the
    CLI reports in one line (exit 5). The periodic checkpoints already committed stay.
    """
    need = int(margin * sum(getattr(x, "nbytes", 0) for x in jax.tree_util.tree_leaves(state)))
    need += 1 << 20                               # orbax's metadata and the manifest
    directory = pathlib.Path(directory)
    probe = next((d for d in (directory, *directory.parents) if d.exists()), directory)
    free = shutil.disk_usage(probe).free
    if free < need:
        raise OSError(errno.ENOSPC, f"No space left on device for a checkpoint of about "
                      f"{need / 2**20:.1f} MB ({free / 2**20:.1f} MB free)", str(directory))


def write_manifest(step_dir: pathlib.Path) -> None:
    """Writes `<step_dir>/digests.json`: size and SHA-256 of every file of the folder.

    Called once orbax has committed the step. The JSON is written to a temporary file that
    is flushed to disk and renamed, so a kill leaves either no manifest or a whole one.
    """
    step_dir = pathlib.Path(step_dir)
    files = {name: {"size": (step_dir / name).stat().st_size,
                    "sha256": _sha256(step_dir / name)} for name in _step_files(step_dir)}
    text = json.dumps({"format": _MANIFEST_FORMAT, "version": _MANIFEST_VERSION,
                       "algorithm": "sha256", "files": files},
                      sort_keys=True, separators=(",", ":"))
    tmp = step_dir / f"{_MANIFEST_TMP}-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, step_dir / MANIFEST)


def _read_manifest(step_dir: pathlib.Path, where: str) -> dict | None:
    """The manifest's {file: {size, sha256}}, None when the step has none."""
    path = step_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
        files = manifest["files"]
        ok = (manifest["format"] == _MANIFEST_FORMAT and manifest["algorithm"] == "sha256"
              and manifest["version"] == _MANIFEST_VERSION and isinstance(files, dict)
              and all(isinstance(v, dict) and isinstance(v.get("size"), int)
                      and isinstance(v.get("sha256"), str) for v in files.values()))
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"checkpoint {where} is unreadable: its digest manifest "
                              f"{MANIFEST} is damaged ({type(err).__name__})") from err
    if not ok:
        raise CheckpointError(f"checkpoint {where} is unreadable: its digest manifest "
                              f"{MANIFEST} is damaged (unexpected fields or values)")
    return files


def verify_manifest(step_dir: pathlib.Path, where: str | None = None) -> bool:
    """Checks a step folder against its digest manifest.

    Returns:
        True when every file matches, False when the step has no manifest (restorable,
        unverified: a warning is logged once per folder).

    Raises:
        CheckpointError: naming the folder and the first file (in sorted order) that
            differs from, is missing from, or is not in the manifest.
    """
    step_dir = pathlib.Path(step_dir)
    where = where or str(step_dir)
    expected = _read_manifest(step_dir, where)
    if expected is None:
        if where not in _unverified_warned:
            _unverified_warned.add(where)
            log.warning("checkpoint %s has no %s (written by a jaxkd older than the digests, "
                        "or the run stopped between the commit and the manifest): restoring "
                        "it unverified", where, MANIFEST)
        return False
    found = _step_files(step_dir)
    names = sorted(set(expected) | set(found))
    for name in names:
        path = step_dir / name
        if name not in expected:
            problem = "is not in the manifest"
        elif name not in found:
            problem = "is missing"
        elif path.stat().st_size != expected[name]["size"]:
            problem = (f"has {path.stat().st_size} bytes instead of {expected[name]['size']}")
        elif _sha256(path) != expected[name]["sha256"]:
            problem = "does not match its SHA-256"
        else:
            continue
        raise CheckpointError(f"checkpoint {where} is unreadable: its file {name} {problem} "
                              f"(digests recorded in {MANIFEST} when it was saved)")
    return True


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


def _restore_step(manager, step: int, abstract_state, where: str, *, verify: bool = True):
    """Restores (state, meta) of one step folder, checked against its digests (unless the
    caller has just done so) and against the expected tree."""
    if verify:
        verify_manifest(pathlib.Path(where), where)
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
        self.layout = workdir_lib.PhaseLayout(self.phase_dir)
        self._periodic = _manager(self.layout.ckpt, keep=keep, async_save=async_save)
        self._final = _manager(self.layout.final, keep=None, async_save=False)
        self._anchors = None
        self._async = async_save
        self._sealer: threading.Thread | None = None   # writes the newest step's manifest
        self._sealer_error: BaseException | None = None
        self._final_checked: dict[int, CheckpointError | None] = {}

    def save(self, step: int, state, meta: dict) -> None:
        """Starts an asynchronous periodic save (the previous one is awaited first).

        Its digest manifest is written by a background thread as soon as orbax has
        committed the step; the next save, `wait` and `close` wait for that thread first
        (so orbax never deletes an old step while it is being hashed).
        """
        self._join_sealer()
        check_room(self.phase_dir, state)
        self._periodic.save(step, args=_save_args(state, meta), force=True)
        if not self._async:
            self._seal_committed(self._periodic, step)
            return
        self._sealer = threading.Thread(target=self._seal_when_committed, args=(step,),
                                        name=f"jaxkd-digests-{step}", daemon=True)
        self._sealer.start()

    def _seal_when_committed(self, step: int) -> None:
        try:
            self._seal_committed(self._periodic, step)
        except BaseException as err:  # re-raised in the main thread by _join_sealer
            self._sealer_error = err

    def _join_sealer(self) -> None:
        if self._sealer is not None:
            self._sealer.join()
            self._sealer = None
        if self._sealer_error is not None:
            err, self._sealer_error = self._sealer_error, None
            raise err

    @staticmethod
    def _seal_committed(manager, step: int, *, barrier: bool = False) -> None:
        """Waits for orbax's commit of `step`, then writes its manifest (process 0).

        With `barrier`, every process waits for the manifest (final checkpoints and
        anchors, read by the next phase or run): called by every process then.
        """
        manager.wait_until_finished()
        step_dir = pathlib.Path(manager.directory) / str(step)
        if jax.process_index() == 0 and step_dir.is_dir():
            write_manifest(step_dir)
        if barrier and jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"jaxkd digests {step_dir}")

    def wait(self) -> None:
        """Blocks until every started save is committed to disk, with its manifest."""
        self._join_sealer()
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
            where = str(self.layout.ckpt / str(step))
            try:
                restored = _restore_step(self._periodic, step, abstract_state, where)
            except CheckpointError as err:
                log.warning("skipping checkpoint: %s", err)
                errors.append(str(err))
                continue
            self._set_aside(steps[:i])
            return restored
        if errors:
            raise CheckpointError("no usable checkpoint in " + str(self.layout.ckpt) +
                                  ":\n  " + "\n  ".join(errors))
        return None

    def _set_aside(self, steps: list[int]) -> None:
        """Moves damaged periodic checkpoints out of the way of the steps to be redone."""
        if not steps:
            return
        if jax.process_index() == 0:
            damaged = self.layout.damaged
            damaged.mkdir(exist_ok=True)
            for step in steps:
                target = damaged / f"ckpt-{step}-{time.strftime('%Y%m%d-%H%M%S')}"
                (self.layout.ckpt / str(step)).rename(target)
                log.warning("moved the damaged checkpoint %s to %s",
                            self.layout.ckpt / str(step), target)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"jaxkd set aside {self.phase_dir}")
        self._periodic.reload()

    def save_anchor(self, epoch: int, state) -> None:
        """Keeps the state at the end of `epoch` for good (RCO's anchor points).

        A resumed run that redoes the epoch finds the anchor already written (it is
        identical, the run being deterministic) and leaves it alone. The save is committed
        before returning: the periodic checkpoint written after it must never be on disk
        without it (a run resumed from there would not redo the epoch).
        """
        check_room(self.phase_dir, state)
        if self._anchors is None:
            self._anchors = _manager(self.layout.anchors, keep=None, async_save=False)
        if epoch not in self._anchors.all_steps():
            self._anchors.save(epoch, args=_save_args(state, {"epoch": epoch}), force=True)
            self._seal_committed(self._anchors, epoch, barrier=True)

    def has_final(self) -> bool:
        """Whether the phase is finished: its final checkpoint exists and is intact.

        Raises:
            CheckpointError: the final checkpoint exists but its files no longer match
                their digests (or its manifest is damaged); the message names the folder
                and says how to retrain the phase.
        """
        step = self._final.latest_step()
        if step is None:
            return False
        self._check_final(step)
        return True

    def _check_final(self, step: int) -> None:
        """Verifies final/<step> against its manifest once per instance."""
        if step not in self._final_checked:
            where = str(self.layout.final / str(step))
            try:
                verify_manifest(self.layout.final / str(step), where)
                self._final_checked[step] = None
            except CheckpointError as err:
                self._final_checked[step] = CheckpointError(
                    f"the phase is finished but its final {err}\n{self._final_hint()}")
        if self._final_checked[step] is not None:
            raise self._final_checked[step]

    def save_final(self, state, meta: dict) -> None:
        """Writes the phase's final checkpoint once; an existing one is never rewritten."""
        self.wait()
        if self._final.latest_step() is not None:
            raise CheckpointError(f"final checkpoint of {self.phase_dir} exists already")
        step = int(meta.get("step", 0))
        check_room(self.phase_dir, state)
        self._final.save(step, args=_save_args(state, meta))
        self._seal_committed(self._final, step, barrier=True)

    def restore_final(self, abstract_state):
        """Returns (state, meta) of the final checkpoint (verified against its digests)."""
        step = self._final.latest_step()
        if step is None:
            raise CheckpointError(f"no final checkpoint in {self.layout.final}")
        self._check_final(step)
        try:
            return _restore_step(self._final, step, abstract_state,
                                 str(self.layout.final / str(step)), verify=False)
        except CheckpointError as err:
            raise CheckpointError(f"{err}\n{self._final_hint()}") from err

    def final_meta(self) -> dict[str, Any]:
        """The final checkpoint's JSON metadata, without reading any array (the files are
        checked against their digests)."""
        step = self._final.latest_step()
        if step is None:
            raise CheckpointError(f"no final checkpoint in {self.layout.final}")
        self._check_final(step)
        try:
            restored = self._final.restore(step, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore()))
            return dict(restored.meta)
        except Exception as err:  # orbax raises many types for damaged files
            raise CheckpointError(
                f"final checkpoint {self.layout.final / str(step)} is unreadable: "
                f"{type(err).__name__}: {str(err)[:300]}\n{self._final_hint()}") from err

    def _final_hint(self) -> str:
        return (f"A final checkpoint is never rewritten in place. To train phase "
                f"'{self.phase_dir.name}' again, move {self.layout.final} away (e.g. "
                f"into {self.layout.damaged}) or delete it: the rerun resumes from the "
                f"phase's newest good periodic checkpoint in {self.layout.ckpt}; or "
                f"delete {self.phase_dir} to train the phase from its start.")

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
    final = workdir_lib.PhaseLayout(path).final
    if final.is_dir():
        path = final
    if path.name == final.name or not (path / "state").is_dir():
        steps = sorted(int(p.name) for p in path.iterdir() if p.name.isdigit())
        if not steps:
            raise CheckpointError(f"no checkpoint step folder under {path}")
        return path / str(steps[-1])
    return path


def _restore_variables(step_dir: pathlib.Path, abstract_state) -> dict:
    verify_manifest(step_dir)
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

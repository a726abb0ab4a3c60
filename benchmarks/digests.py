"""Cost of the checkpoint digest manifest (`digests.json`): saves and restores with and without.

A ResNet-20 TrainState (parameters, BatchNorm statistics, SGD momentum, step; the state a
periodic checkpoint holds) is saved through the same orbax manager jaxkd uses (async
save, keep 3), interleaved round by round, after warm-up:

- `save`: `CheckpointManager.save` + `wait_until_finished` (the step committed), no manifest;
- `save_digests`: the same through `jaxkd.checkpoints.PhaseCheckpoints.save` + `wait`
  (committed, then its `digests.json` written);
- `restore` / `restore_verified`: the newest step restored without / with the manifest check.

The ratios are `save_digests / save` and `restore_verified / restore`. In a run the manifest
is written by a background thread once the async commit is done, so the train loop only
waits for it when the next save comes earlier than that.

    python -m benchmarks.digests --model=resnet20 --rounds=15
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from absl import flags

from benchmarks import common


def _state(model: str, num_classes: int):
    import jax
    import optax

    from jaxkd import models
    from jaxkd.config import default_config
    from jaxkd.engine import sharding, state as state_lib

    student = models.get_model(model, num_classes=num_classes)
    tx = state_lib.make_optimizer(default_config().optimizer, optax.constant_schedule(0.1))
    variables = state_lib.init_variables(student, jax.random.key(0), (32, 32, 3))
    state = state_lib.create_train_state(student, variables, tx)
    # Non-zero momentum, as in any checkpoint after the first step.
    state = state.replace(opt_state=jax.tree_util.tree_map(
        lambda x: x + 0.01 if hasattr(x, "dtype") and x.dtype.kind == "f" else x,
        state.opt_state))
    return sharding.replicate(state, sharding.make_mesh(1))


def measure(*, model: str, num_classes: int, rounds: int, warmup: int,
            directory: pathlib.Path) -> dict:
    import jax

    from jaxkd import checkpoints

    state = _state(model, num_classes)
    abstract = checkpoints.abstract_like(state)
    meta = {"step": 0, "start_step": 0, "history": [], "wall_time": 0.0, "pending": []}
    plain = checkpoints._manager(directory / "plain" / "ckpt", keep=3, async_save=True)
    sealed = checkpoints.PhaseCheckpoints(directory / "digests", keep=3, async_save=True)
    steps = {"plain": 0, "digests": 0}

    def save():
        steps["plain"] += 1
        plain.save(steps["plain"], args=checkpoints._save_args(state, meta), force=True)
        plain.wait_until_finished()

    def save_digests():
        steps["digests"] += 1
        sealed.save(steps["digests"], state, meta)
        sealed.wait()

    def restore():
        return plain.restore(
            steps["plain"], args=checkpoints._restore_args(abstract)).state

    def restore_verified():
        where = str(directory / "digests" / "ckpt" / str(steps["digests"]))
        return checkpoints._restore_step(sealed._periodic, steps["digests"], abstract,
                                         where)[0]

    try:
        saves = common.interleaved({"save": save, "save_digests": save_digests},
                                   rounds=rounds, warmup=warmup)
        restores = common.interleaved({"restore": restore,
                                       "restore_verified": restore_verified},
                                      rounds=rounds, warmup=warmup)
        step_dir = directory / "digests" / "ckpt" / str(steps["digests"])
        manifest_only = common.interleaved(
            {"manifest": lambda: checkpoints.write_manifest(step_dir),
             "verify": lambda: checkpoints.verify_manifest(step_dir)},
            rounds=rounds, warmup=1)
        files = checkpoints._step_files(step_dir)
        nbytes = sum((step_dir / f).stat().st_size for f in files)
    finally:
        plain.close()
        sealed.close()
    times = {**saves, **restores, **manifest_only}
    save_r = common.ratio(saves["save_digests"], saves["save"])
    restore_r = common.ratio(restores["restore_verified"], restores["restore"])
    manifest_s = common.summarize(manifest_only["manifest"])["median_s"]
    return {"variants": {n: common.summarize(t) for n, t in times.items()},
            "save_ratio": save_r["ratio_of_medians"],
            "save_ratio_median_of_rounds": save_r["median_of_ratios"],
            "restore_ratio": restore_r["ratio_of_medians"],
            "restore_ratio_median_of_rounds": restore_r["median_of_ratios"],
            "checkpoint_files": len(files), "checkpoint_bytes": nbytes,
            "hash_mb_per_s": nbytes / 2**20 / max(manifest_s, 1e-9),
            "parameters": int(sum(x.size for x in jax.tree_util.tree_leaves(state.params)))}


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("model", "resnet20", "model (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_integer("num_classes", 10, "classes of the model's head", flag_values=fv)
    flags.DEFINE_integer("rounds", 10, "timed rounds", flag_values=fv)
    flags.DEFINE_integer("warmup", 2, "untimed rounds first", flag_values=fv)
    flags.DEFINE_string("dir", "", "where to write the checkpoints (default: a fresh "
                        "temporary folder, removed at the end)", flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    common.apply_xla_flags(args.xla_flags)
    directory = pathlib.Path(args.dir or tempfile.mkdtemp(prefix="jaxkd-digests-"))
    try:
        body = measure(model=args.model, num_classes=args.num_classes, rounds=args.rounds,
                       warmup=args.warmup, directory=directory)
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)
    record = {"benchmark": "digests", "model": args.model, "rounds": args.rounds, **body,
              "env": common.env_info()}
    for name, s in body["variants"].items():
        print(f"{name:17s} {s['median_s'] * 1e3:9.2f} ms")
    print(f"{body['checkpoint_files']} files, {body['checkpoint_bytes'] / 2**20:.2f} MiB "
          f"({body['parameters']} parameters); hashing {body['hash_mb_per_s']:.0f} MiB/s")
    print(f"save with / without manifest: {body['save_ratio']:.3f} (median of rounds "
          f"{body['save_ratio_median_of_rounds']:.3f}); restore verified / unverified: "
          f"{body['restore_ratio']:.3f} ({body['restore_ratio_median_of_rounds']:.3f})")
    return common.emit(record, args.json)


if __name__ == "__main__":
    main()

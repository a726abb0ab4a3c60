"""`jaxkd evaluate`: top-1 / top-5 / ECE of a trained phase on a data split.

    jaxkd evaluate --workdir=W [--phase=NAME] [--checkpoint=PATH] [--split=test] [--json]
                   [--config.data.source=... --config.data.path=...]

The model and the data come from the workdir's `config.json`; the weights from the phase's
final checkpoint (default: the last finished phase) or `--checkpoint` (a phase dir, a
`final` or `ckpt/<step>` or `anchors/<epoch>` folder; its workdir is found from the path
when `--workdir` is not given). `--config.data.*` (and `--config.eval_batch_size`,
`--config.num_devices`) evaluate on other data; images are then normalised with the
training data's mean/std, as the model was trained. Nothing is written to the workdir.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

import jax
import ml_collections
import numpy as np
from absl import flags
from ml_collections import config_flags

from jaxkd import analysis
from jaxkd.cli import common
from jaxkd.engine import sharding
from jaxkd.workspace import Workspace

USAGE = __doc__
_OVERRIDABLE = ("--config.data.", "--config.eval_batch_size", "--config.num_devices",
                "--config.dtype")


def _prescan(argv: list[str], name: str) -> str:
    for i, a in enumerate(argv):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return ""


def locate(argv: list[str]) -> tuple[pathlib.Path, str]:
    """(workdir, checkpoint) from `--workdir` / `--checkpoint` before flags are parsed."""
    workdir, checkpoint = _prescan(argv, "workdir"), _prescan(argv, "checkpoint")
    if not workdir and checkpoint:
        found = common.workdir_of_checkpoint(checkpoint)
        if found is None:
            common.fail(f"--checkpoint={checkpoint} is not inside a workdir: pass "
                        f"--workdir=W for the model and the data (its config.json)")
        workdir = str(found)
    if not workdir:
        common.fail("--workdir=W (or --checkpoint=PATH inside a workdir) is required")
    return pathlib.Path(workdir).absolute(), checkpoint


def define_flags(fv, config):
    common.define_phase_flags(fv, "evaluate")
    flags.DEFINE_enum("split", "test", ["test", "train", "heldout"], "Split to evaluate.",
                      flag_values=fv)
    flags.DEFINE_bool("cpu_split", True, "On a CPU backend, one device per core, as "
                      "training (the same float rounding).", flag_values=fv)
    flags.DEFINE_bool("json", False, "Print one JSON object instead of the table.",
                      flag_values=fv)
    config_flags.DEFINE_config_dict("config", config, "The workdir's config: only "
                                    "--config.data.* (and eval_batch_size, num_devices, "
                                    "dtype) may be overridden.", flag_values=fv,
                                    lock_config=True)


def run(argv: list[str]) -> int:
    fv = common.new_flags()
    if common.helping(argv):
        define_flags(fv, ml_collections.ConfigDict())
        common.parse(fv, argv, USAGE)
    workdir, checkpoint = locate(argv)
    trained = common.read_config(workdir)
    define_flags(fv, ml_collections.ConfigDict(trained.to_dict()))
    bad = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--config.")
           and not a.startswith(_OVERRIDABLE)]
    if bad:
        common.fail(f"{bad[0]}: evaluate changes only the data (--config.data.*, "
                    f"eval_batch_size, num_devices, dtype) of the workdir's config")
    common.parse(fv, argv, USAGE)
    common.setup_logging()
    data_overridden = any(a.startswith("--config.data.") for a in argv[1:])
    phase = fv["phase"].value or (common.phase_of_checkpoint(workdir, checkpoint) or ""
                                  if checkpoint else "")
    return common.guarded(lambda: _evaluate(fv, workdir, trained, phase, data_overridden))


def make_workspace(workdir, config=None) -> Workspace:
    """The `jaxkd.workspace.Workspace` of a workdir, read only (`config`: its config.json
    by default).

    With `config.num_devices = 0` (all devices) on a machine whose device count does not
    divide the batch sizes (a workdir trained elsewhere), it uses as many devices as do.
    """
    workdir = pathlib.Path(workdir).absolute()
    config = config if config is not None else common.read_config(workdir)
    if not config.num_devices and jax.process_count() == 1:
        fit = sharding.host_cpu_devices((config.batch_size, config.eval_batch_size),
                                        jax.device_count(), 0)
        if fit != jax.device_count():
            common.log.info("using %d of the %d devices (they divide the batch sizes)", fit,
                            jax.device_count())
            config.num_devices = fit
    return Workspace.from_workdir(workdir, config)


def evaluate(workdir, *, phase: str = "", checkpoint: str = "", split: str = "test",
             config=None, trained=None, training_stats: dict | None = None) -> dict:
    """top-1 / top-5 / ECE of a phase (or a checkpoint) on a split, as a dict.

    `config` (default: the workdir's) may differ from it in its data; `training_stats`
    (`mean`, `std`) then normalise the images as in training.
    """
    workdir = pathlib.Path(workdir).absolute()
    trained = trained if trained is not None else common.read_config(workdir)
    config = config if config is not None else trained
    ws = make_workspace(workdir, config)
    if training_stats is not None:
        if len(training_stats["class_names"]) != ws.splits.num_classes:
            common.fail(f"the data has {ws.splits.num_classes} classes, the model was "
                        f"trained on {len(training_stats['class_names'])}")
        ws.splits = dataclasses.replace(
            ws.splits, mean=np.asarray(training_stats["mean"], np.float32),
            std=np.asarray(training_stats["std"], np.float32))
        ws.pipeline = ws.make_pipeline()
    chosen = common.choose_phase(ws.plan, workdir, phase)
    ref = ws.checkpoint_ref(chosen, checkpoint)
    source = ref.checkpoint
    logits = ws.ref_logits(ref, split)
    labels = ws.labels(split)
    k = min(5, ws.splits.num_classes)
    recorded = next((p for p in common.read_results(workdir).get("phases", [])
                     if p.get("name") == chosen.name), {})
    return {"workdir": str(workdir), "phase": chosen.name, "model": chosen.model,
            "checkpoint": source, "split": split, "source": config.data.source,
            "num_examples": int(len(labels)), "top1": analysis.topk_accuracy(logits, labels),
            f"top{k}": analysis.topk_accuracy(logits, labels, k),
            "ece": analysis.expected_calibration_error(logits, labels),
            "ece_bins": analysis.ECE_BINS,
            # What the run measured on the same data and weights, when they are the same.
            "recorded_last_top1": recorded.get("last_top1")
            if not checkpoint and split == "test" and training_stats is None else None}


def _evaluate(fv, workdir, trained, phase, data_overridden) -> int:
    config = fv["config"].value
    if fv["cpu_split"].value:
        if isinstance(config.batch_size, int) and isinstance(config.eval_batch_size, int) \
                and isinstance(config.num_devices, int):
            sharding.split_host_cpu(config)   # as training did (same rounding)
    stats = None
    if data_overridden:
        try:
            stats = common.data_stats(workdir, trained)
        except Exception as err:  # pylint: disable=broad-except  # data gone: say so
            common.log.warning("the training data is unavailable (%s): normalising with the "
                               "evaluated data's own mean/std", str(err)[:200])
    out = evaluate(workdir, phase=phase, checkpoint=fv["checkpoint"].value,
                   split=fv["split"].value, config=config, trained=trained,
                   training_stats=stats)
    if fv["json"].value:
        print(json.dumps(out, indent=2))
    else:
        print(format_table(out))
    sys.stdout.flush()
    return 0


def format_table(out: dict) -> str:
    topk = next(k for k in out if k.startswith("top") and k != "top1")
    rec = out.get("recorded_last_top1")
    lines = [f"{'workdir':<10} {out['workdir']}",
             f"{'phase':<10} {out['phase']} ({out['model']}) from {out['checkpoint']}",
             f"{'data':<10} {out['source']}, {out['split']} split, {out['num_examples']} "
             f"examples",
             f"{'top-1':<10} {out['top1']:.4f}" + (f"   (results.json last_top1 {rec:.4f})"
                                                  if rec is not None else ""),
             f"{topk.replace('top', 'top-'):<10} {out[topk]:.4f}",
             f"{'ECE':<10} {out['ece']:.4f}   ({out['ece_bins']} bins)"]
    return "\n".join(lines)

"""`jaxkd export`: a trained phase as one self-contained file (see `jaxkd.exported`).

    jaxkd export --workdir=W [--phase=NAME] [--checkpoint=PATH] --out=FILE

Writes FILE (params, batch statistics and metadata: model, overrides, classes, class
names, normalisation mean/std, image shape, phase, jaxkd version) and FILE.json (the
metadata alone). Default phase: the last finished one. Class names and mean/std come from
the workdir's `results.json` when recorded there, else from its data (`config.json`).
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
from absl import flags

import jaxkd
from jaxkd import checkpoints, exported, models, plans
from jaxkd.cli import common
from jaxkd.engine import state as state_lib

USAGE = __doc__


def define_flags(fv) -> None:
    common.define_phase_flags(fv, "export")
    flags.DEFINE_string("out", None, "The exported file to write (e.g. model.msgpack).",
                        flag_values=fv)
    flags.DEFINE_bool("json", False, "Print the metadata as JSON.", flag_values=fv)
    flags.mark_flags_as_required(["workdir", "out"], flag_values=fv)


def export(workdir, out, *, phase: str = "", checkpoint: str = "") -> dict:
    """Exports a phase of `workdir` (or `checkpoint`) to `out`; returns the metadata."""
    workdir = pathlib.Path(workdir).absolute()
    config = common.read_config(workdir)
    plan = plans.validate(config)
    if checkpoint and not phase:
        phase = common.phase_of_checkpoint(workdir, checkpoint) or ""
    chosen = common.choose_phase(plan, workdir, phase)
    stats = common.data_stats(workdir, config)
    dtype = jax.numpy.bfloat16 if config.dtype == "bfloat16" else jax.numpy.float32
    model = models.get_model(chosen.model, num_classes=len(stats["class_names"]),
                             dtype=dtype, **dict(chosen.model_overrides))
    abstract = jax.eval_shape(lambda: state_lib.init_variables(
        model, jax.random.key(0), tuple(stats["image_shape"])))
    source = checkpoint or str(workdir / "phases" / chosen.name)
    variables = checkpoints.load_variables(source, abstract)
    recorded = next((p for p in common.read_results(workdir).get("phases", [])
                     if p.get("name") == chosen.name), {})
    meta = {"model": chosen.model, "model_overrides": dict(chosen.model_overrides),
            "num_classes": len(stats["class_names"]),
            "class_names": list(stats["class_names"]),
            "mean": [float(x) for x in stats["mean"]],
            "std": [float(x) for x in stats["std"]],
            "image_shape": [int(x) for x in stats["image_shape"]],
            "dtype": str(config.dtype), "phase": chosen.name, "role": chosen.role,
            "method": str(config.method), "jaxkd_version": jaxkd.__version__,
            "workdir": str(workdir), "checkpoint": str(source),
            "source": str(config.data.source),
            "data_stats": "results.json" if stats.get("recorded") else "computed at export",
            "last_top1": recorded.get("last_top1") if not checkpoint else None}
    exported.write(out, variables, meta)
    return meta


def run(argv: list[str]) -> int:
    fv = common.new_flags()
    define_flags(fv)
    common.parse(fv, argv, USAGE)
    common.setup_logging()

    def body():
        meta = export(fv["workdir"].value, fv["out"].value, phase=fv["phase"].value,
                      checkpoint=fv["checkpoint"].value)
        if fv["json"].value:
            print(json.dumps(meta, indent=2, sort_keys=True))
        else:
            out = pathlib.Path(fv["out"].value)
            print(f"exported phase {meta['phase']} ({meta['model']}, {meta['num_classes']} "
                  f"classes, {'x'.join(map(str, meta['image_shape']))}) to {out} "
                  f"(metadata: {out.name}.json)")
        sys.stdout.flush()
    return common.guarded(body)

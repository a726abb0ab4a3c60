"""The configuration schema: defaults for every field and validation before any compile.

Every file in `configs/` starts from `default_config()` and overrides what its paper table
needs. `validate(config)` runs before any model is built or any program compiled, and each
error names the field the user wrote (`config.loss.temperature must be > 0, got -1`).
"""

from __future__ import annotations

import difflib
import json

import ml_collections

from jaxkd.validation import (check, fail, require_bool, require_choice, require_int,
                              require_number)

DTYPES = ("float32", "bfloat16")
NONFINITE_POLICIES = ("stop", "skip")
OPTIMIZERS = ("sgd", "adamw")
DECAY_MASKS = ("all", "no_bn_bias")


def default_config() -> ml_collections.ConfigDict:
    """Returns the full schema with the papers' CIFAR defaults (ResNet, 164 epochs)."""
    c = ml_collections.ConfigDict()
    c.method = "baseline"
    c.seed = 0
    c.model = "resnet20"
    c.model_overrides = ml_collections.ConfigDict()
    c.dtype = "float32"

    c.data = ml_collections.ConfigDict()
    c.data.source = "sample"
    c.data.name = ""
    c.data.path = ""
    c.data.test_path = ""
    c.data.data_dir = ""
    c.data.label_key = "label"
    c.data.image_key = ""
    c.data.train_split = ""
    c.data.test_split = ""
    c.data.streaming = "auto"
    c.data.heldout_size = 0
    c.data.heldout_mode = "carve"   # 'carve': out of train; 'sample': a sample that stays in it
    c.data.train_per_class = 0
    c.data.test_per_class = 0       # > 0: evaluate on this many test images per class
    c.data.image_size = 32
    c.data.bptt = 35                # text sources: tokens per truncated-BPTT window
    c.data.text_key = "text"        # source 'tfds_text': the text feature
    c.data.vocab_size = 0           # source 'tfds_text': words kept (0: all), rest <unk>
    c.data.augment = ml_collections.ConfigDict(
        dict(kind="cifar", crop_padding=4, pad_mode="constant", flip=True))

    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = 164

    c.optimizer = ml_collections.ConfigDict(
        dict(name="sgd", momentum=0.9, nesterov=True, weight_decay=1e-4, decay_mask="all",
             frozen=(), clip_grad_norm=0.0))   # > 0: clip the gradient's global norm
    # {parameter-path prefix: learning-rate factor}, e.g. {'teacher': 5.0} ([RCO] RL).
    c.optimizer.lr_scales = ml_collections.ConfigDict()
    # name 'plateau' ([BAN] Sec. 4.2, jaxkd.plateau): base_lr x factor whenever the
    # held-out metric (plateau_monitor: 'perplexity' or 'loss') is not below its best so
    # far by more than plateau_threshold, decided after every epoch.
    c.schedule = ml_collections.ConfigDict(
        dict(name="step", base_lr=0.1, boundaries=(82, 123), factor=0.1, warmup_epochs=0,
             cycles=1, plateau_threshold=0.0, plateau_monitor="perplexity"))
    c.loss = ml_collections.ConfigDict(dict(name="cross_entropy"))

    # Start the plan's first phase from a checkpoint on disk instead of a random init
    # ([SD] Table 2's M#75 / M#150 students, [BAN] Table 5's shared layers, fine-tuning).
    # epoch: the epoch the checkpoint was taken at; methods 'baseline' and 'kd' then train
    # the remaining num_epochs - epoch epochs of the schedule from there on.
    c.init = ml_collections.ConfigDict(dict(checkpoint="", subtrees=(), epoch=0))

    # Method-specific blocks; each plan builder reads only its own.
    c.teacher = ml_collections.ConfigDict(
        dict(model="", checkpoint="", model_overrides=ml_collections.ConfigDict()))
    c.generations = 0
    c.born_again = ml_collections.ConfigDict(dict(variant="ban", label_weight=0.0))
    # patriarch_loss: 'tolerant_teacher' (TSD with u, k; u = 1 is CE), 'cross_entropy',
    # 'label_smoothing' (CE with eps = label_smoothing) or 'confidence_penalty'
    # (CE - beta * H): the patriarchs of [TT] Table 2.
    c.tolerant_teacher = ml_collections.ConfigDict(
        dict(u=0.6, k=5, label_weight=0.6, patriarch_loss="tolerant_teacher",
             label_smoothing=0.1, beta=0.1))
    # Each of the K cycles restarts a cosine schedule at config.schedule.base_lr.
    c.snapshot = ml_collections.ConfigDict(dict(cycles=4, temperature=2.0, teacher=True))
    # The RCO teacher's architecture is config.teacher.model (default: config.model).
    c.rco = ml_collections.ConfigDict(
        dict(mode="one_stage", anchor_every_epochs=10, teacher_epochs=0, delta=0.8,
             temperature=5.0, kl_weight=1.0, teacher_workdir="", teacher_lr=0.05))
    # Fields of config.schedule the RCO teacher uses instead (empty: config.schedule with
    # rco.teacher_lr); e.g. dict(base_lr=0.4, boundaries=(...), warmup_epochs=5).
    c.rco.teacher_schedule = ml_collections.ConfigDict()

    # Engine.
    c.eval_every_epochs = 1
    c.checkpoint_every_steps = 0   # 0: at the end of every epoch.
    c.keep_checkpoints = 3
    c.log_every_steps = 50
    # Train steps per compiled call: > 1 runs up to that many steps (never past an epoch's
    # end, a logging window or a periodic checkpoint) in one program, a lax.scan over the
    # device-resident data, so a fast accelerator is not held back by Python dispatch. The
    # streaming (ImageNet) pipeline keeps one step per call.
    c.steps_per_call = 1
    # Seeds packed in one program (jaxkd.engine.packed): > 1 trains every phase of the runs
    # config.seed, config.seed + 1, ... at once (jax.vmap over stacked states); each run
    # gets its own workdir <workdir>/seeds/<seed>/, and results.json their mean +- std.
    c.num_seeds = 1
    c.nonfinite = "stop"
    c.progress_bar = True
    c.num_devices = 0               # 0: every device of every host.
    c.write_report = True
    c.allow_config_change = False
    # True: jaxkd.run.run shrinks the config with jaxkd.presets.smoke before validation
    # (resnet8, the bundled sample, batch 32, one epoch per phase: about a minute on CPU).
    c.smoke = False
    return c


def _validate_positive_ints(config: ml_collections.ConfigDict) -> None:
    for field in ("batch_size", "eval_batch_size", "num_epochs", "eval_every_epochs",
                  "keep_checkpoints", "log_every_steps", "steps_per_call", "num_seeds"):
        require_int(config[field], f"config.{field}", low=1)
    for field in ("checkpoint_every_steps", "num_devices", "generations", "seed"):
        require_int(config[field], f"config.{field}", low=0)


def _validate_choices(config: ml_collections.ConfigDict) -> None:
    require_choice(config.dtype, "config.dtype", DTYPES)
    require_choice(config.nonfinite, "config.nonfinite", NONFINITE_POLICIES)
    require_bool(config.smoke, "config.smoke")
    opt = config.optimizer
    require_choice(opt.name, "config.optimizer.name", OPTIMIZERS)
    require_choice(opt.decay_mask, "config.optimizer.decay_mask", DECAY_MASKS)
    require_number(opt.weight_decay, "config.optimizer.weight_decay", low=0)
    require_number(opt.momentum, "config.optimizer.momentum", low=0, high=1, high_open=True)
    require_number(opt.get("clip_grad_norm", 0.0), "config.optimizer.clip_grad_norm", low=0)
    for group, field in (("schedule", "base_lr"), ("rco", "teacher_lr")):
        require_number(config[group][field], f"config.{group}.{field}", low=0, low_open=True)


def _check_paths(value, field: str) -> None:
    """A tuple of '/'-separated parameter-path prefixes such as ('Conv_0', 'head')."""
    if not (isinstance(value, (tuple, list))
            and all(isinstance(p, str) and p.strip("/") for p in value)):
        fail(f"config.{field}", "must be a tuple of parameter-path prefixes such as "
             "('Conv_0', 'head')", value)


def _validate_init_and_frozen(config: ml_collections.ConfigDict) -> None:
    init = config.init
    if not isinstance(init.checkpoint, str):
        fail("config.init.checkpoint", "must be a path or ''", init.checkpoint)
    _check_paths(init.subtrees, "init.subtrees")
    check(init.checkpoint or not init.subtrees,
          f"config.init.subtrees={tuple(init.subtrees)!r} needs config.init.checkpoint")
    epoch = init.epoch
    require_int(epoch, "config.init.epoch", low=0)
    check(not epoch or (init.checkpoint and config.method in ("baseline", "kd")
                        and epoch < config.num_epochs),
          f"config.init.epoch={epoch} needs config.init.checkpoint, config.method 'baseline' "
          f"or 'kd' and config.num_epochs > it (got {config.method!r}, {config.num_epochs})")
    _check_paths(config.optimizer.frozen, "optimizer.frozen")
    for prefix, factor in dict(config.optimizer.lr_scales).items():
        require_number(factor, f"config.optimizer.lr_scales.{prefix}", low=0, low_open=True)
    teacher_ckpt = config.teacher.checkpoint
    check(not teacher_ckpt or config.method == "kd",
          f"config.teacher.checkpoint is read only by config.method='kd' (plain KD from a "
          f"checkpoint on disk), got method {config.method!r}")


def validate_engine_fields(config: ml_collections.ConfigDict) -> None:
    """Checks the fields the engine itself reads; raises ValueError naming the field."""
    _validate_positive_ints(config)
    _validate_choices(config)
    _validate_init_and_frozen(config)


# Fields removed from the schema: (what replaces them, the message for a config that still
# sets one). A workdir's config.json that holds one is read through `migrate`.
RETIRED_FIELDS = {
    "config.rco.teacher_model": ("teacher.model", "the RCO teacher's architecture is "
                                 "config.teacher.model (one field for every method)"),
    "config.snapshot.peak_lr": ("schedule.base_lr", "each snapshot cycle restarts its cosine "
                                "schedule at config.schedule.base_lr"),
}


def migrate(saved: dict) -> dict:
    """A copy of a saved config (a workdir's config.json) with retired fields moved to the
    fields that replace them: `rco.teacher_model` -> `teacher.model` (when set), and, for
    the snapshot methods, `snapshot.peak_lr` -> `schedule.base_lr` (other methods never
    read it). What the old run computed is what the migrated config describes."""
    out = json.loads(json.dumps(saved))
    rco, snapshot = out.get("rco", {}), out.get("snapshot", {})
    if isinstance(rco, dict) and "teacher_model" in rco:
        model = rco.pop("teacher_model")
        if model and isinstance(out.get("teacher"), dict):
            out["teacher"]["model"] = model
    if isinstance(snapshot, dict) and "peak_lr" in snapshot:
        peak = snapshot.pop("peak_lr")
        if out.get("method") in ("snapshot_distillation", "snapshot_ensemble") and \
                isinstance(out.get("schedule"), dict):
            out["schedule"]["base_lr"] = peak
    return out


def check_known_fields(config: ml_collections.ConfigDict,
                       reference: ml_collections.ConfigDict | None = None,
                       prefix: str = "config") -> None:
    """Rejects fields that the schema does not know (a typo would otherwise be ignored)."""
    reference = default_config() if reference is None else reference
    free_form = {"model_overrides", "loss"}
    for key in config.keys():
        retired = RETIRED_FIELDS.get(f"{prefix}.{key}")
        if retired:
            raise ValueError(f"{prefix}.{key} was retired: {retired[1]}")
        if key not in reference:
            raise ValueError(f"{prefix}.{key} is not a known field; known: "
                             f"{sorted(reference.keys())}")
        value = config[key]
        if isinstance(value, ml_collections.ConfigDict) and key not in free_form \
                and isinstance(reference[key], ml_collections.ConfigDict) \
                and not key.endswith("overrides") and len(reference[key]):
            check_known_fields(value, reference[key], f"{prefix}.{key}")


def field_paths(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """The dotted names of a config's fields ('schedule.base_lr'; an empty group counts as
    one field, as `model_overrides`)."""
    paths = []
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict) and len(value):
            paths += field_paths(value, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


# Config groups read by one method only (`nearest_fields` suggests them last).
_METHOD_GROUPS = ("teacher", "born_again", "tolerant_teacher", "snapshot", "rco", "init")


def nearest_fields(config: ml_collections.ConfigDict | None, field: str, n: int = 3
                   ) -> list[str]:
    """The fields of `config` (default: the schema) whose names are closest to `field`.

    Args:
        config: a config (its keys, nested, are the candidates).
        field: what the user wrote, e.g. 'learning_rate' or 'schedule.baselr'.

    Returns:
        Up to `n` dotted names ('config.schedule.base_lr'), closest first: by the whole
        path, then by initials ('learning_rate' -> the '*_lr' fields), then by the last
        name alone.
    """
    paths = field_paths(config if config is not None else default_config())
    by_path = difflib.get_close_matches(field, paths, n=n, cutoff=0.75)
    name = field.rsplit(".", 1)[-1]
    words = [w for w in name.split("_") if w]
    initials = "".join(w[0] for w in words)        # learning_rate -> lr, weight_decay -> wd
    # '*_lr' first; among those, the fields every method reads before a method's own
    # group ('learning_rate' -> schedule.base_lr, then rco.teacher_lr).
    by_initials = sorted((p for p in paths if len(words) > 1
                          and initials in p.rsplit(".", 1)[-1].split("_")),
                         key=lambda p: (p.rsplit("_", 1)[-1] != initials,
                                        p.split(".", 1)[0] in _METHOD_GROUPS))
    last = {p.rsplit(".", 1)[-1]: p for p in paths}
    by_name = [last[m] for m in difflib.get_close_matches(name, list(last), n=n, cutoff=0.6)]
    out = list(dict.fromkeys(by_path + by_initials + by_name))[:n]
    return [f"config.{p}" for p in out]


def from_saved(saved: dict) -> ml_collections.ConfigDict:
    """The config a workdir's `config.json` records, completed by the schema's defaults.

    A field added to the schema after the workdir was written is absent from its
    config.json; it gets its default (which changes nothing the run computed), so readers
    need no guards for fields that always exist now; a retired field is moved to the one
    that replaced it (`migrate`). Free-form groups (`loss`,
    `model_overrides`, `*.model_overrides`) are taken as saved.

    Args:
        saved: the parsed `config.json`.
    """
    merged = json.loads(default_config().to_json())
    _merge_saved(merged, migrate(saved))
    return ml_collections.ConfigDict(merged)


def _merge_saved(into: dict, saved: dict) -> None:
    for key, value in saved.items():
        free_form = key == "loss" or key.endswith("overrides")
        if isinstance(value, dict) and isinstance(into.get(key), dict) and not free_form:
            _merge_saved(into[key], value)
        else:
            into[key] = value


# Fields a rerun may change without being refused: they do not alter what is computed,
# or (generations) they extend a finished process, or (nonfinite) they only decide what
# happens at a non-finite step (rerun with 'skip' after a stop).
RESUME_SAFE_FIELDS = ("progress_bar", "allow_config_change", "write_report",
                       "log_every_steps", "generations", "nonfinite")


def _flatten(d: dict, prefix: str = "config") -> dict:
    out = {}
    for key, value in d.items():
        name = f"{prefix}.{key}"
        out.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
    return out


def config_diff(old: dict, new: dict) -> list[str]:
    """Lines `field: old -> new` for every field that differs (resume-safe ones ignored);
    `old` (a workdir's config.json) is read through `migrate` first."""
    a, b = _flatten(migrate(old)), _flatten(new)
    safe = {f"config.{f}" for f in RESUME_SAFE_FIELDS}
    # A field added to the schema after the workdir was written is absent from its
    # config.json; at its default value it changes nothing, so the run still resumes.
    defaults = _flatten(json.loads(default_config().to_json()))
    a = {**{k: v for k, v in defaults.items() if k in b and k not in a}, **a}
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
            for k in sorted(set(a) | set(b))
            if k not in safe and json.dumps(a.get(k)) != json.dumps(b.get(k))]

"""Execute a plan phase by phase: validate, resume, train, write `results.json`.

`run(config, workdir)` is what `python -m jaxkd.main` and the notebooks call. Everything a
user can get wrong in the config is checked before the first program is compiled. A
rerun of the same command resumes at the first unfinished phase (mid-phase from its newest
checkpoint); finished phases are immutable and only read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time
from typing import Any

import jax
import ml_collections

from jaxkd import analysis, checkpoints, config as config_lib, data, losses, models, plans
from jaxkd import provenance, rco, schedules
from jaxkd import workdir as workdir_lib
from jaxkd.engine import loop, sharding
from jaxkd.engine import state as state_lib
from jaxkd.engine.writer import MetricWriter

log = logging.getLogger(__name__)

# Fields a rerun may change without being refused: they do not alter what is computed,
# or (generations) they extend a finished process, or (nonfinite) they only decide what
# happens at a non-finite step (rerun with 'skip' after a stop).
_RESUME_SAFE_FIELDS = ("progress_bar", "allow_config_change", "write_report",
                       "log_every_steps", "generations", "nonfinite")


class ConfigMismatchError(ValueError):
    """The workdir was written by a different config."""


def _flatten(d: dict, prefix: str = "config") -> dict:
    out = {}
    for key, value in d.items():
        name = f"{prefix}.{key}"
        out.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
    return out


def config_diff(old: dict, new: dict) -> list[str]:
    """Lines `field: old -> new` for every field that differs (resume-safe ones ignored)."""
    a, b = _flatten(old), _flatten(new)
    safe = {f"config.{f}" for f in _RESUME_SAFE_FIELDS}
    # A field added to the schema after the workdir was written is absent from its
    # config.json; at its default value it changes nothing, so the run still resumes.
    defaults = _flatten(json.loads(config_lib.default_config().to_json()))
    a = {**{k: v for k, v in defaults.items() if k in b and k not in a}, **a}
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
            for k in sorted(set(a) | set(b))
            if k not in safe and json.dumps(a.get(k)) != json.dumps(b.get(k))]


def _check_workdir_config(config, workdir: pathlib.Path) -> None:
    """Writes config.json, or refuses to resume a workdir written by another config.

    A config.json that is not a config (not JSON, not an object, no 'method', 'model' and
    'data', a group of the schema that is not an object) is a ValueError naming the file;
    with config.allow_config_change it is replaced, with a warning.

    While no phase has begun (no phase folder holds a checkpoint: a start that failed at
    data loading, a compile, or before the first checkpoint), a different config simply
    replaces config.json (one log line): nothing computed depends on the old one, so
    fixing a typo and rerunning the command needs no --config.allow_config_change.
    """
    path = workdir / "config.json"
    phases = workdir / "phases"
    begun = phases.is_dir() and any(
        sub.is_dir() and any(sub.iterdir())
        for phase in phases.iterdir() if phase.is_dir()
        for sub in (phase / "ckpt", phase / "final", phase / "anchors"))
    new = json.loads(config.to_json())
    if path.exists():
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not the config file jaxkd writes there; "
                             f"move it away or use another --workdir")
        try:
            old = json.loads(path.read_bytes().decode("utf-8"))
            problem = "" if isinstance(old, dict) else f"a JSON {type(old).__name__}"
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            old, problem = None, f"not JSON: {type(err).__name__}: {err}"
        if not problem:
            missing = [k for k in ("method", "model", "data") if k not in old]
            groups = [k for k, v in new.items() if isinstance(v, dict) and k in old
                      and not isinstance(old[k], dict)]
            problem = (f"no {', '.join(repr(k) for k in missing)}" if missing else
                       f"{', '.join(repr(k) for k in groups)} not an object" if groups else "")
        if problem and not config.allow_config_change:
            raise ValueError(
                f"{path} is not a config jaxkd wrote ({problem}); it records the config "
                f"the workdir was made with. Use another --workdir, restore the file, or "
                f"pass --config.allow_config_change=True to replace it with this config.")
        if problem:
            log.warning("%s is not a config jaxkd wrote (%s); replaced with this config "
                        "(config.allow_config_change=True)", path, problem)
        diff = [] if problem else config_diff(old, new)
        if diff and not begun and not config.allow_config_change:
            log.info("%s: config changed before any phase began (%s); config.json replaced",
                     workdir, "; ".join(diff))
            diff = []
        if diff and not config.allow_config_change:
            raise ConfigMismatchError(
                f"{workdir} was written by a different config; fields that differ:\n  " +
                "\n  ".join(diff) + "\nUse another --workdir, or pass "
                "--config.allow_config_change=True to resume anyway.")
    if jax.process_index() == 0:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(new, indent=2, sort_keys=True))
        tmp.replace(path)


def validate(config) -> list[plans.Phase]:
    """Every check that needs no data and no compile; returns the plan."""
    config_lib.check_known_fields(config)
    config_lib.validate_engine_fields(config)
    plan = plans.build(config)
    known = set(models.list_models())
    for phase in plan:
        if phase.model not in known:
            raise ValueError(f"phase {phase.name!r}: unknown model {phase.model!r} "
                             f"(config.model / config.teacher.model); known: {sorted(known)}")
        losses.get(phase.loss)
        try:
            schedules.build(dict(phase.schedule), steps_per_epoch=1,
                            num_epochs=phase.schedule_num_epochs or phase.num_epochs)
        except ValueError as err:   # name the group the user set (rco.teacher_schedule)
            raise ValueError(str(err).replace("config.schedule.", phase.schedule_source + ".")
                             ) from err
    return plan


def _check_teacher_paths(phase: plans.Phase) -> None:
    """A teacher checkpoint on disk must exist before anything is trained."""
    ref = phase.teacher
    if ref is None or not ref.checkpoint:
        return
    anchors = ref.route if ref.select else ((ref.anchor,) if ref.anchor else ())
    paths = [pathlib.Path(ref.checkpoint) / "anchors" / str(a) for a in anchors] or \
        [pathlib.Path(ref.checkpoint)]
    field = "config.rco.teacher_workdir" if anchors else "config.teacher.checkpoint"
    for path in paths:
        if not path.exists():
            raise checkpoints.CheckpointError(
                f"phase {phase.name!r}: teacher checkpoint {path} does not exist ({field})")


def _check_init_path(config) -> None:
    """config.init.checkpoint must exist before anything is trained."""
    path = config.get("init", {}).get("checkpoint", "")
    if path and not pathlib.Path(path).exists():
        raise checkpoints.CheckpointError(f"config.init.checkpoint {path} does not exist")


class Runner:
    """Holds what the phases of one run share and executes them in order."""

    def __init__(self, config, workdir: pathlib.Path, plan: list[plans.Phase], *,
                 writer: MetricWriter | None = None):
        self.config, self.workdir = config, workdir
        self.plan = rco.trim_to_route(plan, self.route())   # a finished greedy route
        self.mesh = sharding.make_mesh(config.num_devices)
        sharding.check_batch_size(config.batch_size, self.mesh)
        sharding.check_batch_size(config.eval_batch_size, self.mesh, "config.eval_batch_size")
        self.splits = data.load_splits(config.data, seed=config.seed)
        plans.validate_losses(plan, self.splits.num_classes)
        self.pipeline = data.make_pipeline(
            self.splits, mesh=self.mesh, batch_size=config.batch_size,
            eval_batch_size=config.eval_batch_size, augment_cfg=config.data.augment,
            seed=config.seed)
        self.image_shape = tuple(self.splits.image_shape)
        self.writer = writer if writer is not None else MetricWriter(workdir)
        self.ctx = loop.PhaseContext(config, workdir, self.mesh, self.pipeline, self.writer,
                                     self.splits.num_classes)
        self.key = jax.random.key(config.seed)
        self._finals: dict[str, Any] = {}

    @classmethod
    def from_workdir(cls, workdir: str | pathlib.Path, config=None) -> "Runner":
        """A Runner over an existing workdir, rebuilt from its config.json (for analysis).

        Nothing is trained or written: metrics go nowhere new and no TensorBoard file is
        created; the phases' checkpoints are only read. `config` replaces config.json's
        (`jaxkd evaluate` on other data).
        """
        workdir = pathlib.Path(workdir).absolute()
        if config is None:
            config = ml_collections.ConfigDict(
                json.loads((workdir / "config.json").read_text()))
        return cls(config, workdir, validate(config),
                   writer=MetricWriter(workdir, tensorboard=False))

    # -- models and states -------------------------------------------------------------
    def model(self, name: str, overrides) -> Any:
        dtype = jax.numpy.bfloat16 if self.config.dtype == "bfloat16" else jax.numpy.float32
        return models.get_model(name, num_classes=self.splits.num_classes, dtype=dtype,
                                **dict(overrides))

    def phase_model(self, phase: plans.Phase):
        return self.model(phase.model, phase.model_overrides)

    def _abstract_variables(self, model):
        return jax.eval_shape(lambda: state_lib.init_variables(model, jax.random.key(0),
                                                               self.image_shape))

    def _phase_dir(self, name: str) -> pathlib.Path:
        return self.workdir / "phases" / name

    def _schedule(self, phase: plans.Phase, start_step: int):
        """The phase's learning rate as a function of the optimiser's step count."""
        spe = self.pipeline.steps_per_epoch
        sched = schedules.build(dict(phase.schedule), steps_per_epoch=spe,
                                num_epochs=phase.schedule_num_epochs or phase.num_epochs)
        offset = start_step - phase.schedule_start_epoch * spe
        return state_lib.offset_schedule(sched, offset)

    def _optimizer(self, phase: plans.Phase, start_step: int):
        return state_lib.make_optimizer(self.config.optimizer,
                                        self._schedule(phase, start_step))

    def _fresh_state(self, phase: plans.Phase, model):
        key = jax.random.fold_in(jax.random.fold_in(self.key, 1), phase.seed_index)
        variables = state_lib.init_variables(model, key, self.image_shape)
        if phase.name == self.plan[0].name and self.config.get("init", {}).get("checkpoint"):
            variables = self._init_from_checkpoint(variables)
        state = state_lib.create_train_state(model, variables, self._optimizer(phase, 0))
        return sharding.replicate(state, self.mesh)

    def _init_from_checkpoint(self, variables: dict) -> dict:
        """The plan's first phase starts from config.init's subtrees of a checkpoint.

        [SD] Table 2 (a student continued from the M#75 / M#150 snapshot) and [BAN]
        Table 5 (conv1 and classifier shared with the teacher). Shapes are checked here,
        before the phase trains: a mismatch names config.init.checkpoint and the path.
        """
        init = self.config.init
        saved, where = checkpoints.load_saved_variables(init.checkpoint,
                                                        what="config.init.checkpoint")
        return state_lib.graft_subtrees(variables, jax.device_get(saved), init.subtrees,
                                        where=str(where))

    def _abstract_state(self, phase: plans.Phase, model):
        """Shapes, dtypes and shardings of a phase's TrainState, without computing it."""
        shapes = jax.eval_shape(lambda: state_lib.create_train_state(
            model, state_lib.init_variables(model, jax.random.key(0), self.image_shape),
            self._optimizer(phase, 0)))
        repl = sharding.replicated(self.mesh)
        return jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), shapes)

    def final_state(self, index: int):
        """The final TrainState of plan[index] (from memory, else from its checkpoint)."""
        phase = self.plan[index]
        if phase.name not in self._finals:
            ckpts = checkpoints.PhaseCheckpoints(self._phase_dir(phase.name))
            target = self._abstract_state(phase, self.phase_model(phase))
            self._finals[phase.name] = ckpts.restore_final(target)[0]
            ckpts.close()
        return self._finals[phase.name]

    def _initial_state(self, index: int, model):
        phase = self.plan[index]
        if phase.init == "fresh" or index == 0:
            return self._fresh_state(phase, model), 0
        prev = self.final_state(index - 1)
        start = int(jax.device_get(prev.step))
        # A copy: the train step donates its state, and the previous phase's final state
        # may also be this phase's teacher (snapshot distillation).
        prev = jax.tree_util.tree_map(lambda x: x.copy(), prev)
        state = prev.replace(tx=self._optimizer(phase, start), apply_fn=model.apply)
        return state, start

    # -- teachers -----------------------------------------------------------------------
    def _load_checkpoint_teacher(self, path: str, model) -> Any:
        variables = checkpoints.load_variables(path, self._abstract_variables(model))
        return sharding.replicate(variables, self.mesh)

    def teacher_of_ref(self, ref: plans.TeacherRef) -> loop.Teacher:
        """A module and variables for a concrete (non-greedy) teacher reference."""
        if not ref.anchor and not ref.checkpoint:
            names = {p.name: i for i, p in enumerate(self.plan)}
            model = self.phase_model(self.plan[names[ref.phases[0]]])
            members = [state_lib.variables_of(self.final_state(names[n])) for n in ref.phases]
            return loop.Teacher(model, members[0] if len(members) == 1 else members,
                                self.plan[names[ref.phases[0]]].model)
        if ref.checkpoint:
            name, path = ref.model, ref.checkpoint
            model = self.model(ref.model, ref.model_overrides)
        else:
            phase = plans.phase_by_name(self.plan)[ref.phases[0]]
            name, path = phase.model, str(self._phase_dir(phase.name))
            model = self.phase_model(phase)
        if ref.anchor:
            path = f"{path}/anchors/{ref.anchor}"
        return loop.Teacher(model, self._load_checkpoint_teacher(path, model), name)

    def teacher(self, index: int, student_state=None) -> loop.Teacher | None:
        """Resolves plan[index].teacher (greedy RCO anchors are chosen here)."""
        ref = self.plan[index].teacher
        if ref is None:
            return None
        if ref.select == "greedy":
            ref = rco.select_anchor(self, index, student_state)
        return self.teacher_of_ref(ref)

    # -- RCO greedy route (persisted so a resumed run keeps its choices) ----------------
    def anchor_refs(self, phase: plans.Phase) -> list[plans.TeacherRef]:
        return [dataclasses.replace(phase.teacher, anchor=e, select="")
                for e in phase.teacher.route]

    def _route_path(self) -> pathlib.Path:
        return self.workdir / "rco_route.json"

    def route(self) -> dict:
        """The greedy RCO route chosen so far: plan index -> anchor index."""
        path = self._route_path()
        return json.loads(path.read_text()) if path.exists() else {}

    def chosen_anchor(self, index: int) -> int:
        return self.route()[str(index)]

    def remember_anchor(self, index: int, anchor: int) -> None:
        route = self.route()
        route[str(index)] = anchor
        write_json_atomic(self._route_path(), route)

    # -- execution ----------------------------------------------------------------------
    def run_phase(self, index: int) -> dict:
        phase = self.plan[index]
        ckpts = checkpoints.PhaseCheckpoints(self._phase_dir(phase.name))
        done = ckpts.has_final()
        record = ckpts.final_meta()["record"] if done else None
        ckpts.close()
        if done:
            log.info("phase %s: finished earlier, skipped", phase.name)
            return record
        model = self.phase_model(phase)
        init_state, start = self._initial_state(index, model)
        teacher = self.teacher(index, init_state)
        key = jax.random.fold_in(jax.random.fold_in(self.key, 2), index)
        spe = self.pipeline.steps_per_epoch
        later = sum(p.num_epochs * spe for p in self.plan[index + 1:])
        self.ctx.clock.steps_after = later
        log.info("phase %d/%d %s (%s, init=%s, teacher=%s, loss=%s, %d epochs): %s",
                 index + 1, len(self.plan), phase.name, phase.model, phase.init,
                 describe_teacher(phase.teacher), phase.loss, phase.num_epochs,
                 self.ctx.clock.describe(phase.num_epochs * spe + later))
        state, record = loop.train_phase(self.ctx, phase, model, init_state, teacher=teacher,
                                         key=key, start_step=start,
                                         schedule=self._schedule(phase, start))
        self._finals = {phase.name: state}   # keep only what the next phase may continue
        return record

    def run(self) -> dict:
        try:
            return self._run()
        finally:
            # Also when a phase fails: an open tensorboardX writer is otherwise closed by its
            # atexit hook, which on Python >= 3.12 fails ("can't create new thread at
            # interpreter shutdown") and loses the events still queued.
            self.writer.close()

    def data_record(self) -> dict:
        """What a trained model needs of its data to be used elsewhere (`jaxkd export`):
        class names, the normalisation mean/std (in [0, 1] units) and the image shape."""
        return {"class_names": list(self.splits.class_names),
                "num_classes": int(self.splits.num_classes),
                "mean": [float(x) for x in self.splits.mean],
                "std": [float(x) for x in self.splits.std],
                "image_shape": [int(x) for x in self.image_shape]}

    def _run(self) -> dict:
        t0 = time.time()
        records, index = [], 0
        while index < len(self.plan):
            records.append(self.run_phase(index))
            # A greedy RCO route ends once a stage has learned the last anchor.
            self.plan = rco.trim_to_route(self.plan, self.route())
            index += 1
        results = {"method": self.config.method, "phases": records,
                   "ensembles": analysis.plan_ensembles(self),
                   "data": self.data_record(),
                   "run_wall_time": time.time() - t0,
                   "provenance": provenance.read(self.workdir)}
        write_json_atomic(self.workdir / "results.json", _strip_history(results))
        return results


def describe_teacher(ref: plans.TeacherRef | None) -> str:
    """A short human description of a teacher reference for logs."""
    if ref is None:
        return "none"
    where = ref.checkpoint or "+".join(ref.phases)
    if ref.select:
        return f"{ref.select} anchor of {where}"
    return f"{where} anchor {ref.anchor}" if ref.anchor else where


def _strip_history(results: dict) -> dict:
    out = dict(results)
    out["phases"] = [{k: v for k, v in p.items() if k != "history"} | {
        "evaluations": len(p.get("history", []))} for p in results["phases"]]
    return out


def write_json_atomic(path: pathlib.Path, obj) -> None:
    """Writes JSON through a temporary file and a rename (process 0 only)."""
    if jax.process_index() != 0:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    tmp.replace(path)


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Runs `config`'s plan in `workdir`; returns the results (also in results.json)."""
    workdir = pathlib.Path(workdir).absolute()
    if config.get("smoke", False) is True:   # --config.smoke=True: a trial of about a minute
        from jaxkd import presets
        config = presets.smoke(config)
        log.info("config.smoke: %s, %s on the bundled sample, batch %d, %d epoch(s)",
                 config.method, config.model, config.batch_size, config.num_epochs)
    plan = validate(config)
    for phase in plan:
        _check_teacher_paths(phase)
    _check_init_path(config)
    if workdir.exists() and not workdir.is_dir():
        raise ValueError(f"--workdir {workdir} is an existing file, not a folder: choose "
                         f"another --workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    # One writer per workdir (reliability.md): held until run() returns or raises; the OS
    # frees it if the process dies.
    with workdir_lib.lock(workdir, process_index=jax.process_index()):
        _check_workdir_config(config, workdir)
        provenance.record(workdir)
        runner = Runner(config, workdir, plan)
        results = runner.run()
        if config.write_report and jax.process_index() == 0:
            try:
                from jaxkd import report
                t = time.perf_counter()
                log.info("writing the report (tables and figures) to %s", workdir)
                report.write_report([workdir])
                log.info("report written in %.1f s", time.perf_counter() - t)
            except ImportError:
                pass
    return results

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
from typing import Sequence

import jax
import ml_collections
import numpy as np

from jaxkd import checkpoints, config as config_lib, plans, presets, provenance, report
from jaxkd import workdir as workdir_lib
from jaxkd.analysis import aggregate, ensembles, stats
from jaxkd.engine import loop, packed, sharding
from jaxkd.engine.writer import MetricWriter
from jaxkd.workspace import Workspace

log = logging.getLogger(__name__)

class ConfigMismatchError(ValueError):
    """The workdir was written by a different config."""


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
    path = workdir_lib.config_path(workdir)
    begun = workdir_lib.begun(workdir)
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
        diff = [] if problem else config_lib.config_diff(old, new)
        if diff and not begun and not config.allow_config_change:
            log.info("%s: config changed before any phase began (%s); config.json replaced",
                     workdir, "; ".join(diff))
            diff = []
        if diff and not config.allow_config_change:
            raise ConfigMismatchError(
                f"{workdir} was written by a different config; fields that differ:\n  " +
                "\n  ".join(diff) + "\nUse another --workdir, or pass "
                "--config.allow_config_change=True to resume anyway.")
    workdir_lib.write_json_atomic(path, new, process_index=jax.process_index())


def _check_teacher_paths(phase: plans.Phase) -> None:
    """A teacher checkpoint on disk must exist before anything is trained."""
    ref = phase.teacher
    if ref is None or not ref.checkpoint:
        return
    anchors = ref.route if ref.select else ((ref.anchor,) if ref.anchor else ())
    layout = workdir_lib.PhaseLayout(pathlib.Path(ref.checkpoint))
    paths = [layout.anchor(a) for a in anchors] or [layout.path]
    field = "config.rco.teacher_workdir" if anchors else "config.teacher.checkpoint"
    for path in paths:
        if not path.exists():
            raise checkpoints.CheckpointError(
                f"phase {phase.name!r}: teacher checkpoint {path} does not exist ({field})")


def _check_init_path(config) -> None:
    """config.init.checkpoint must exist before anything is trained."""
    path = config.init.checkpoint
    if path and not pathlib.Path(path).exists():
        raise checkpoints.CheckpointError(f"config.init.checkpoint {path} does not exist")


class Runner:
    """Executes a plan phase by phase in a workspace: resume, teachers, records.

    A finished phase is skipped (its record read from its final checkpoint); an unfinished
    one resumes from its newest checkpoint inside `jaxkd.engine.loop.train_phase`. The
    Runner resolves each phase's teacher, greedy RCO anchors included (Algorithm 2: the
    choice is made on the held-out split and kept in `rco_route.json`, so a resumed stage
    keeps it), and writes `results.json` once the plan is done.
    """

    def __init__(self, workspace: Workspace, *, writer: MetricWriter | None = None):
        self.ws = workspace
        self.writer = writer if writer is not None else MetricWriter(workspace.workdir)
        self.ctx = loop.PhaseContext(workspace.config, workspace.workdir, workspace.mesh,
                                     workspace.pipeline, self.writer)
        self._anchor_logits: dict[plans.TeacherRef, np.ndarray] = {}

    @property
    def plan(self) -> list[plans.Phase]:
        return self.ws.plan

    # -- teachers -----------------------------------------------------------------------
    def teacher(self, index: int, student_state=None) -> loop.Teacher | None:
        """Resolves plan[index].teacher (greedy RCO anchors are chosen here)."""
        ref = self.plan[index].teacher
        if ref is None:
            return None
        if ref.select == "greedy":
            ref = self.select_anchor(index, student_state)
        return self.ws.teacher_of_ref(ref)

    def _anchor_refs(self, phase: plans.Phase) -> list[plans.TeacherRef]:
        return [dataclasses.replace(phase.teacher, anchor=e, select="")
                for e in phase.teacher.route]

    def _heldout_logits(self, ref: plans.TeacherRef) -> np.ndarray:
        """Held-out logits of an anchor, computed once per run (anchors never change)."""
        if ref not in self._anchor_logits:
            self._anchor_logits[ref] = self.ws.ref_logits(ref, "heldout")
        return self._anchor_logits[ref]

    def select_anchor(self, index: int, student_state) -> plans.TeacherRef:
        """The concrete anchor a 'greedy' TeacherRef of plan[index] resolves to.

        The first student stage learns from the first anchor. Every later stage evaluates
        the student that finished the previous stage on the held-out split against the
        anchors it may move to, H_j = KL(student || anchor_j), and applies
        `plans.greedy_next_anchor` from the anchor that stage used ([RCO] Algorithm 2).
        """
        phase, route = self.plan[index], workdir_lib.read_route(self.ws.workdir)
        anchors = self._anchor_refs(phase)
        prev = self.plan[index - 1] if index else None
        if str(index) in route:          # a resumed stage keeps the anchor it chose
            chosen = route[str(index)]
        elif prev is None or prev.teacher is None or prev.teacher.select != "greedy":
            chosen = 0
        else:
            current = route[str(index - 1)]
            student = self.ws.state_logits(phase, student_state, "heldout")
            kl = [stats.mean_kl(student, self._heldout_logits(ref))
                  if current <= j < len(anchors) - 1 else float("nan")
                  for j, ref in enumerate(anchors)]
            chosen = plans.greedy_next_anchor(kl, current, self.ws.config.rco.delta)
            log.info("RCO greedy: after anchor %d, H=%s -> anchor %d", current,
                     np.round(kl, 4).tolist(), chosen)
        workdir_lib.remember_anchor(self.ws.workdir, index, chosen,
                                    process_index=jax.process_index())
        return dataclasses.replace(anchors[chosen], select="")

    # -- execution ----------------------------------------------------------------------
    def finished_record(self, index: int) -> dict | None:
        """plan[index]'s record when it finished earlier (its final checkpoint), else None."""
        ckpts = checkpoints.PhaseCheckpoints(self.ws.phase_dir(self.plan[index].name))
        record = ckpts.final_meta()["record"] if ckpts.has_final() else None
        ckpts.close()
        return record

    def phase_inputs(self, index: int, model) -> dict:
        """What `loop.train_phase` takes for plan[index] besides the context: the initial
        state, its start step, the teacher, the training key and the schedule."""
        ws, phase = self.ws, self.plan[index]
        init_state, start = ws.initial_state(index, model)
        return dict(init_state=init_state, start_step=start,
                    teacher=self.teacher(index, init_state),
                    key=jax.random.fold_in(jax.random.fold_in(ws.key, 2), index),
                    schedule=ws.schedule(phase, start))

    def announce(self, index: int, clock, *, runs: int = 1) -> None:
        """Logs the start of plan[index] with the run's ETA (the steps after it too)."""
        phase, spe = self.plan[index], self.ws.pipeline.steps_per_epoch
        clock.steps_after = sum(p.num_epochs * spe for p in self.plan[index + 1:])
        log.info("phase %d/%d %s (%s, init=%s, teacher=%s, loss=%s, %d epochs%s): %s",
                 index + 1, len(self.plan), phase.name, phase.model, phase.init,
                 plans.describe_teacher(phase.teacher), phase.loss, phase.num_epochs,
                 f", {runs} packed runs" if runs > 1 else "",
                 clock.describe(phase.num_epochs * spe + clock.steps_after))

    def run_phase(self, index: int) -> dict:
        """Trains plan[index] (or reads its record, when it finished earlier)."""
        phase, record = self.plan[index], self.finished_record(index)
        if record is not None:
            log.info("phase %s: finished earlier, skipped", phase.name)
            return record
        model = self.ws.phase_model(phase)
        inputs = self.phase_inputs(index, model)
        self.announce(index, self.ctx.clock)
        state, record = loop.train_phase(self.ctx, phase, model, **inputs)
        self.ws.keep_final(phase, state)
        return record

    def end_phase(self) -> None:
        """After a phase: a greedy RCO route ends once a stage has learned the last anchor."""
        self.ws.plan = plans.trim_to_route(self.plan, workdir_lib.read_route(self.ws.workdir))

    def results(self, records: list[dict], t0: float) -> dict:
        """The run's results (phases, ensembles, data, provenance), written to
        `results.json` (without the phases' evaluation histories)."""
        results = {"method": self.ws.config.method, "phases": records,
                   "ensembles": ensembles.plan_ensembles(self.ws),
                   "data": self.ws.data_record(),
                   "run_wall_time": time.time() - t0,
                   "provenance": provenance.read(self.ws.workdir)}
        workdir_lib.write_json_atomic(workdir_lib.results_path(self.ws.workdir),
                                      _strip_history(results),
                                      process_index=jax.process_index())
        return results

    def run(self) -> dict:
        """Runs every phase in order and writes `results.json`; returns the results."""
        try:
            return self._run()
        finally:
            # Also when a phase fails: an open tensorboardX writer is otherwise closed by its
            # atexit hook, which on Python >= 3.12 fails ("can't create new thread at
            # interpreter shutdown") and loses the events still queued.
            self.writer.close()

    def _run(self) -> dict:
        t0 = time.time()
        records, index = [], 0
        while index < len(self.plan):
            records.append(self.run_phase(index))
            self.end_phase()
            index += 1
        return self.results(records, t0)


class PackedRunner:
    """Executes one plan for several seeds at once (`config.num_seeds`), phase by phase.

    Each seed has its own `Runner` over its own workspace and workdir
    (`<workdir>/seeds/<seed>/`); a phase trains the seeds still on the plan as one packed
    program (`jaxkd.engine.packed`), each with the initial state and teacher its own
    Runner resolves (greedy RCO anchors per seed). `results.json` of the packed workdir
    holds every seed's results and their mean, sample std and n.
    """

    def __init__(self, runners: Sequence[Runner], workdir: pathlib.Path):
        self.runners, self.workdir = list(runners), workdir
        first = self.runners[0].ws
        self.ctx = loop.PhaseContext(
            first.config, workdir, first.mesh,
            packed.PackedPipeline([r.ws.pipeline for r in self.runners], first.mesh),
            packed.SeedWriters([r.writer for r in self.runners]), packed=True)

    def run_phase(self, index: int, runners: list[Runner]) -> list[dict]:
        """Trains plan[index] of `runners` packed; returns their records."""
        records = [r.finished_record(index) for r in runners]
        phase = runners[0].plan[index]
        if all(rec is not None for rec in records):
            log.info("phase %s: finished earlier for every seed, skipped", phase.name)
            return records
        self.ctx.pipeline = packed.PackedPipeline([r.ws.pipeline for r in runners],
                                                  self.ctx.mesh)
        self.ctx.writer = packed.SeedWriters([r.writer for r in runners])
        model = runners[0].ws.phase_model(phase)
        inputs = [r.phase_inputs(index, model) for r in runners]
        teachers = [i["teacher"] for i in inputs]
        teacher = None if teachers[0] is None else dataclasses.replace(
            teachers[0], variables=packed.stack([t.variables for t in teachers],
                                                self.ctx.mesh))
        runners[0].announce(index, self.ctx.clock, runs=len(runners))
        seeds = [packed.SeedRun(r.ws.config.seed, r.ws.phase_dir(phase.name), r.writer)
                 for r in runners]
        state, records = packed.train_packed_phase(
            self.ctx, phase, model,
            packed.stack([i["init_state"] for i in inputs], self.ctx.mesh),
            teacher=teacher, key=packed.stack([i["key"] for i in inputs], self.ctx.mesh),
            runs=seeds, start_step=inputs[0]["start_step"], schedule=inputs[0]["schedule"])
        for r, run_state in zip(runners,
                                packed.unstack(state, len(runners), self.ctx.mesh)):
            r.ws.keep_final(phase, run_state)
        return records

    def run(self) -> dict:
        """Runs every phase for every seed, then writes each seed's and the packed
        workdir's `results.json`; returns the packed results."""
        try:
            t0, records = time.time(), {id(r): [] for r in self.runners}
            index = 0
            while True:
                active = [r for r in self.runners if index < len(r.plan)]
                if not active:
                    break
                for r, rec in zip(active, self.run_phase(index, active)):
                    records[id(r)].append(rec)
                    r.end_phase()
                index += 1
            per_seed = [r.results(records[id(r)], t0) for r in self.runners]
        finally:
            for r in self.runners:
                r.writer.close()
        results = packed_results(self.runners[0].ws.config, per_seed)
        workdir_lib.write_json_atomic(workdir_lib.results_path(self.workdir),
                                      results, process_index=jax.process_index())
        return results


def packed_results(config, per_seed: Sequence[dict]) -> dict:
    """The packed workdir's results: each seed's (without histories) and, for every phase
    and ensemble, the mean, sample std and n over the seeds (`analysis.aggregate_results`).
    """
    stripped = [_strip_history(r) for r in per_seed]
    return {"method": config.method, "num_seeds": len(per_seed),
            "seeds": [config.seed + i for i in range(len(per_seed))],
            "per_seed": stripped, "aggregate": aggregate.aggregate_results(stripped)}


def _strip_history(results: dict) -> dict:
    out = dict(results)
    out["phases"] = [{k: v for k, v in p.items() if k != "history"} | {
        "evaluations": len(p.get("history", []))} for p in results["phases"]]
    return out


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Runs `config`'s plan in `workdir`; returns the results (also in results.json)."""
    workdir = pathlib.Path(workdir).absolute()
    if config.smoke is True:   # --config.smoke=True: a trial of about a minute
        config = presets.smoke(config)
        log.info("config.smoke: %s, %s on the bundled sample, batch %d, %d epoch(s)",
                 config.method, config.model, config.batch_size, config.num_epochs)
    plan = plans.validate(config)
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
        if config.num_seeds > 1:
            results, reported = _run_seeds(config, workdir, plan), seed_workdirs(config,
                                                                                 workdir)
        else:
            results, reported = Runner(Workspace(config, workdir, plan)).run(), [workdir]
        if config.write_report and jax.process_index() == 0:
            t = time.perf_counter()
            log.info("writing the report (tables and figures) to %s", workdir)
            report.write_report(reported, out=workdir)
            log.info("report written in %.1f s", time.perf_counter() - t)
    return results


def seed_config(config: ml_collections.ConfigDict, index: int) -> ml_collections.ConfigDict:
    """The config of seed `index` of a packed run: seed config.seed + index, unpacked."""
    c = ml_collections.ConfigDict(config.to_dict())
    c.seed, c.num_seeds = config.seed + index, 1
    return c


def seed_workdirs(config, workdir: pathlib.Path) -> list[pathlib.Path]:
    """The packed run's seed workdirs, in seed order."""
    return [workdir_lib.seed_workdir(workdir, config.seed + i)
            for i in range(config.num_seeds)]


def _run_seeds(config, workdir: pathlib.Path, plan) -> dict:
    """`config.num_seeds` runs of `plan` packed: one workspace and Runner per seed, on
    one ('runs', 'data') mesh (`sharding.runs_axis_size`)."""
    devices = config.num_devices or jax.device_count()
    mesh = sharding.make_mesh(config.num_devices, runs=sharding.runs_axis_size(
        config.num_seeds, devices, jax.process_count()))
    log.info("%d packed seeds over a %s mesh of %d devices", config.num_seeds,
             " x ".join(f"{n} {a}" for a, n in mesh.shape.items()), devices)
    runners = []
    for i, path in enumerate(seed_workdirs(config, workdir)):
        seed_cfg = seed_config(config, i)
        path.mkdir(parents=True, exist_ok=True)
        _check_workdir_config(seed_cfg, path)
        provenance.record(path)
        runners.append(Runner(Workspace(seed_cfg, path, plan, mesh)))
    return PackedRunner(runners, workdir).run()

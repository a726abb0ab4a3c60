"""The session of one run: what its phases share, and what analysis reads back.

A `Workspace` holds a run's config, workdir, plan, device mesh, data (splits and the
device pipeline) and builds what the phases need from them: models, optimisers and
schedules, fresh and continued TrainStates, final states read from checkpoints, teachers
(an earlier phase, an anchor, a checkpoint on disk, an ensemble) and predictions on a split.
It trains nothing and writes nothing: `jaxkd.run.Runner` executes the plan with it, and
`Workspace.from_workdir(path)` rebuilds it from a workdir's `config.json` for analysis,
reports, `jaxkd evaluate` and `jaxkd export`.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import numpy as np

from jaxkd import checkpoints, config as config_lib, data, models, plans, plateau, schedules
from jaxkd import validation
from jaxkd import workdir as workdir_lib
from jaxkd.engine import loop, predict, sharding
from jaxkd.engine import state as state_lib


class Workspace:
    """A run's config, workdir, plan, mesh and data, and what is built from them.

    Attributes:
        config: the run's resolved config.
        workdir: its absolute workdir.
        plan: the phases (a finished greedy RCO route trimmed to the stages it took).
        mesh: the ('data',) device mesh (a packed seed's: the packed run's
            ('runs', 'data') mesh, `mesh`).
        splits: the loaded `jaxkd.data.Splits`.
        pipeline: the device pipeline over them.
        image_shape: (H, W, C) of the model's input.
        key: the run's root PRNG key (`config.seed`).
    """

    def __init__(self, config, workdir: str | pathlib.Path, plan: list[plans.Phase],
                 mesh=None):
        self.config, self.workdir = config, pathlib.Path(workdir)
        self.plan = plans.trim_to_route(plan, workdir_lib.read_route(self.workdir))
        self.mesh = mesh or sharding.make_mesh(config.num_devices)
        sharding.check_batch_size(config.batch_size, self.mesh)
        sharding.check_batch_size(config.eval_batch_size, self.mesh, "config.eval_batch_size")
        self.splits = data.load_splits(config.data, seed=config.seed)
        plans.validate_losses(plan, self.splits.num_classes)
        self.pipeline = self.make_pipeline()
        self.image_shape = tuple(self.splits.image_shape)
        self.key = jax.random.key(config.seed)
        self.programs = predict.Programs(self.mesh, self.dtype)
        self._finals: dict[str, Any] = {}

    @classmethod
    def from_workdir(cls, workdir: str | pathlib.Path, config=None) -> "Workspace":
        """The workspace of an existing workdir, rebuilt from its config.json.

        Nothing is trained or written; the phases' checkpoints are only read. `config`
        replaces config.json's (`jaxkd evaluate` on other data).
        """
        workdir = pathlib.Path(workdir).absolute()
        if config is None:
            config = config_lib.from_saved(
                workdir_lib.read_json(workdir_lib.config_path(workdir)))
        return cls(config, workdir, plans.validate(config))

    def make_pipeline(self):
        """The device pipeline over `self.splits` (rebuilt after the splits change)."""
        c = self.config
        return data.make_pipeline(self.splits, mesh=self.mesh, batch_size=c.batch_size,
                                  eval_batch_size=c.eval_batch_size,
                                  augment_cfg=c.data.augment, seed=c.seed)

    @property
    def dtype(self):
        return jax.numpy.bfloat16 if self.config.dtype == "bfloat16" else jax.numpy.float32

    def phase_dir(self, name: str) -> pathlib.Path:
        return workdir_lib.phase_dir(self.workdir, name)

    def index_of(self, name: str) -> int:
        return [p.name for p in self.plan].index(name)

    # -- models, schedules and states ---------------------------------------------------
    def model(self, name: str, overrides) -> Any:
        """The named model for this data; a recurrent model that carries its state across
        training steps (`stream_batch`) gets one row per stream, `config.batch_size`, and
        one that spells its words (`words`) the vocabulary."""
        overrides = dict(overrides)
        takes = models.model_overrides(name)
        if "stream_batch" in takes:
            overrides["stream_batch"] = self.config.batch_size
        if "words" in takes:
            overrides["words"] = tuple(self.splits.class_names)
        return models.get_model(name, num_classes=self.splits.num_classes, dtype=self.dtype,
                                **overrides)

    def phase_model(self, phase: plans.Phase):
        return self.model(phase.model, phase.model_overrides)

    def abstract_variables(self, model):
        return jax.eval_shape(lambda: state_lib.init_variables(model, jax.random.key(0),
                                                               self.image_shape))

    def schedule(self, phase: plans.Phase, start_step: int):
        """The phase's learning rate as a function of the optimiser's step count."""
        spe = self.pipeline.steps_per_epoch
        sched = schedules.build(dict(phase.schedule), steps_per_epoch=spe,
                                num_epochs=phase.schedule_num_epochs or phase.num_epochs)
        offset = start_step - phase.schedule_start_epoch * spe
        return state_lib.offset_schedule(sched, offset)

    def optimizer(self, phase: plans.Phase, start_step: int):
        """The phase's optimiser; a 'plateau' schedule adds its update scale last."""
        tx = state_lib.make_optimizer(self.config.optimizer, self.schedule(phase, start_step))
        if plateau.from_schedule(dict(phase.schedule)) is None:
            return tx
        validation.check(self.splits.heldout is not None,
                         "config.schedule.name='plateau' cuts the rate when the validation "
                         "metric stops improving: set config.data.heldout_size > 0 for a "
                         "validation split")
        return plateau.with_plateau(tx)

    def fresh_state(self, phase: plans.Phase, model):
        """A new TrainState of `phase` (its own init key; the plan's first phase may
        start from `config.init`'s checkpoint), replicated over the mesh."""
        key = jax.random.fold_in(jax.random.fold_in(self.key, 1), phase.seed_index)
        variables = state_lib.init_variables(model, key, self.image_shape)
        if phase.name == self.plan[0].name and self.config.init.checkpoint:
            variables = self._init_from_checkpoint(variables)
        state = state_lib.create_train_state(model, variables, self.optimizer(phase, 0))
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

    def abstract_state(self, phase: plans.Phase, model):
        """Shapes, dtypes and shardings of a phase's TrainState, without computing it."""
        shapes = jax.eval_shape(lambda: state_lib.create_train_state(
            model, state_lib.init_variables(model, jax.random.key(0), self.image_shape),
            self.optimizer(phase, 0)))
        repl = sharding.replicated(self.mesh)
        return jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), shapes)

    def final_state(self, index: int):
        """The final TrainState of plan[index] (from memory, else from its checkpoint)."""
        phase = self.plan[index]
        if phase.name not in self._finals:
            ckpts = checkpoints.PhaseCheckpoints(self.phase_dir(phase.name))
            target = self.abstract_state(phase, self.phase_model(phase))
            self._finals[phase.name] = ckpts.restore_final(target)[0]
            ckpts.close()
        return self._finals[phase.name]

    def keep_final(self, phase: plans.Phase, state) -> None:
        """Keeps only `state` in memory: what the next phase may continue or learn from."""
        self._finals = {phase.name: state}

    def initial_state(self, index: int, model):
        """(state, start step) of plan[index]: fresh, or its predecessor's final state."""
        phase = self.plan[index]
        if phase.init == "fresh" or index == 0:
            return self.fresh_state(phase, model), 0
        prev = self.final_state(index - 1)
        start = int(jax.device_get(prev.step))
        # A copy: the train step donates its state, and the previous phase's final state
        # may also be this phase's teacher (snapshot distillation).
        prev = jax.tree_util.tree_map(lambda x: x.copy(), prev)
        state = prev.replace(tx=self.optimizer(phase, start), apply_fn=model.apply)
        return state, start

    # -- teachers -----------------------------------------------------------------------
    def teacher_of_ref(self, ref: plans.TeacherRef) -> loop.Teacher:
        """A module and variables for a concrete (non-greedy) teacher reference."""
        if not ref.anchor and not ref.checkpoint:
            indices = [self.index_of(n) for n in ref.phases]
            first = self.plan[indices[0]]
            members = [state_lib.variables_of(self.final_state(i)) for i in indices]
            return loop.Teacher(self.phase_model(first),
                                members[0] if len(members) == 1 else members, first.model)
        if ref.checkpoint:
            name, path = ref.model, pathlib.Path(ref.checkpoint)
            model = self.model(ref.model, ref.model_overrides)
        else:
            phase = self.plan[self.index_of(ref.phases[0])]
            name, path = phase.model, self.phase_dir(phase.name)
            model = self.phase_model(phase)
        if ref.anchor:
            path = workdir_lib.PhaseLayout(path).anchor(ref.anchor)
        variables = checkpoints.load_variables(path, self.abstract_variables(model))
        return loop.Teacher(model, sharding.replicate(variables, self.mesh), name)

    def checkpoint_ref(self, phase: plans.Phase, checkpoint: str = "") -> plans.TeacherRef:
        """A reference to `phase`'s final checkpoint (or `checkpoint`, of its model)."""
        return plans.TeacherRef(checkpoint=checkpoint or str(self.phase_dir(phase.name)),
                                model=phase.model, model_overrides=phase.model_overrides)

    # -- predictions --------------------------------------------------------------------
    def logits(self, model, variables, split: str, *, key=None, features: bool = False):
        """Logits (and features) of a network on a split; one program per `key`; a
        progress bar over the batches with `config.progress_bar`."""
        program = None if key is None else self.programs.get(key, model, features)
        return predict.predict_split(
            model, variables, self.pipeline, self.mesh, split, features=features,
            dtype=self.dtype, predict=program,
            progress=f"predicting {split}" if self.config.progress_bar else None)

    def state_logits(self, phase: plans.Phase, state, split: str) -> np.ndarray:
        """Logits of a student state of `phase` on a split."""
        return self.logits(self.phase_model(phase), state_lib.variables_of(state), split,
                           key=(phase.model, phase.model_overrides))

    def ref_logits(self, ref: plans.TeacherRef, split: str, *,
                   features: bool = False):
        """Logits (and features) of a teacher reference (phase, anchor, checkpoint)."""
        teacher = self.teacher_of_ref(ref)
        return self.logits(teacher.model, teacher.variables, split, features=features,
                           key=(teacher.name, repr(teacher.model)))

    def labels(self, split: str) -> np.ndarray:
        return predict.split_labels(self.pipeline, split)

    def data_record(self) -> dict:
        """What a trained model needs of its data to be used elsewhere (`jaxkd export`):
        class names, the normalisation mean/std (in [0, 1] units) and the image shape."""
        return {"class_names": list(self.splits.class_names),
                "num_classes": int(self.splits.num_classes),
                "mean": [float(x) for x in self.splits.mean],
                "std": [float(x) for x in self.splits.std],
                "image_shape": [int(x) for x in self.image_shape]}

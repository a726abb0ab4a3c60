"""Train one phase: epochs, evaluation, logging, periodic checkpoints, resume.

A phase is one training run of a student (see `jaxkd.plans.Phase`). The loop knows nothing
of methods: it receives the student's initial state, an optional teacher (module and
variables), a loss by name and a schedule, and returns the phase's record.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import pathlib
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxkd import checkpoints, losses, plateau
from jaxkd import workdir as workdir_lib
from jaxkd.data.batching import Pipeline
from jaxkd.engine import progress as progress_lib
from jaxkd.engine import step as step_lib
from jaxkd.engine.state import TrainState, variables_of
from jaxkd.engine.writer import MetricWriter

log = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
    """The loss, a gradient or the updated state became NaN/inf; it was not applied."""


@dataclasses.dataclass
class PhaseContext:
    """What every phase of a run shares."""

    config: Any
    workdir: pathlib.Path
    mesh: Mesh
    pipeline: Pipeline
    writer: MetricWriter
    step_cache: dict = dataclasses.field(default_factory=dict)
    clock: progress_lib.RunClock = dataclasses.field(default_factory=progress_lib.RunClock)
    # Packed seeds (`config.num_seeds` > 1, `jaxkd.engine.packed`): programs over a
    # leading run axis.
    packed: bool = False


@dataclasses.dataclass
class Teacher:
    """A teacher ready to run: its module and variables (a list for an ensemble)."""

    model: Any
    variables: Any
    name: str = ""

    def signature(self) -> tuple:
        """What the compiled program depends on: architecture and ensemble size."""
        size = len(self.variables) if isinstance(self.variables, (list, tuple)) else 0
        return (self.name or repr(self.model), size)


@dataclasses.dataclass
class Progress:
    """Host-side bookkeeping saved with every checkpoint (JSON)."""

    start_step: int
    history: list = dataclasses.field(default_factory=list)
    wall_time: float = 0.0
    pending: list = dataclasses.field(default_factory=list)  # steps not logged yet
    # Held-out mean losses, one per epoch, under a 'plateau' schedule (packed: per run).
    heldout: list = dataclasses.field(default_factory=list)

    def as_meta(self, step: int) -> dict:
        return {"step": step, "start_step": self.start_step, "history": self.history,
                "wall_time": self.wall_time, "pending": self.pending,
                "heldout": self.heldout}

    @classmethod
    def from_meta(cls, meta: dict) -> "Progress":
        """The bookkeeping saved with a checkpoint (`as_meta`)."""
        return cls(meta["start_step"], list(meta["history"]), meta["wall_time"],
                   list(meta.get("pending", [])), list(meta.get("heldout", [])))


def _dtype(config):
    return jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32


def evaluate(eval_step: Callable, variables, pipeline, split: str = "test", *, bar=None,
             timings: dict | None = None) -> dict:
    """Top-1, top-5 and mean loss over every example of a split, counted once each.

    `bar` (a tqdm bar) advances by one per batch; `timings['first_call']` receives the
    seconds of the first batch's call (the compile, when the program is new).
    """
    return evaluation_result(evaluation_totals(eval_step, variables, pipeline, split,
                                               bar=bar, timings=timings))


def evaluation_totals(eval_step: Callable, variables, pipeline, split: str = "test", *,
                      bar=None, timings: dict | None = None) -> dict:
    """The eval step's sums over a split, fetched (see `evaluate`); packed runs: each sum
    has a leading run axis."""
    totals = None
    for i, batch in enumerate(pipeline.eval_batches(split)):
        t = time.perf_counter()
        sums = eval_step(variables, batch)
        if i == 0 and timings is not None:
            timings["first_call"] = time.perf_counter() - t
        totals = sums if totals is None else jax.tree_util.tree_map(jnp.add, totals, sums)
        if bar is not None:
            bar.update(1)
    return jax.device_get(totals)


def evaluation_result(totals: dict) -> dict:
    """Top-1, top-5, mean loss and count from one run's `evaluation_totals`."""
    n = float(totals["count"])
    return {"top1": float(totals["correct1"]) / n, "top5": float(totals["correct5"]) / n,
            "loss": float(totals["loss"]) / n, "count": int(n)}


def accuracy_text(res: dict) -> str:
    return f"test top-1 {res['top1']:.4f} top-5 {res['top5']:.4f} loss {res['loss']:.4f}"


def check_finite(window: list, phase: str, step0: int, config, last_ckpt: str) -> dict:
    """Fetches a window of step metrics, stops on a non-finite step, returns the means."""
    fetched = jax.device_get(window)
    bad = [i for i, m in enumerate(fetched) if not bool(m["finite"])]
    if bad and config.nonfinite == "stop":
        raise NonFiniteError(
            f"non-finite loss, gradient or update at step {step0 + bad[0] + 1} of phase "
            f"'{phase}'; "
            f"the update was not applied and nothing was saved. Last good checkpoint: "
            f"{last_ckpt or 'none (the phase had not saved one yet)'}. Set "
            f"config.nonfinite='skip' to skip such steps instead.")
    if bad:
        log.warning("phase %s: skipped %d non-finite steps in the window ending at %d",
                        phase, len(bad), step0 + len(window))
    # loss, top1, grad_norm and a two-term loss's loss_<term>s (a window resumed from a
    # checkpoint of an older version may lack the terms: only keys every step has).
    keys = [k for k in fetched[0] if k != "finite" and all(k in m for m in fetched)]
    good = [m for m in fetched if bool(m["finite"])] or fetched
    # float32 like the step's outputs, also for a resumed window (saved as JSON floats).
    out = {k: float(np.mean(np.asarray([m[k] for m in good], np.float32))) for k in keys}
    out["skipped"] = len(bad)
    return out


def _step_key(phase, teacher: Teacher | None) -> tuple:
    """What decides whether two phases can share compiled steps (`_compiled_steps`)."""
    return (phase.model, phase.model_overrides, phase.loss, phase.loss_params,
            teacher.signature() if teacher else None)


def _chunked(ctx: PhaseContext) -> bool:
    """Whether train steps run `config.steps_per_call` at a time in one program (a
    device-resident pipeline; the streaming pipeline keeps one step per call)."""
    return ctx.config.steps_per_call > 1 and ctx.pipeline.traceable_batches


def _compiled_steps(ctx: PhaseContext, phase, model, teacher: Teacher | None):
    """The phase's jitted train step (or chunk of steps) and eval step, shared by phases
    that compile the same.

    Born-again generations and snapshot cycles of one run differ only in the arguments
    (states, teacher variables), so they reuse one compiled program.
    """
    key = _step_key(phase, teacher)
    if key not in ctx.step_cache:
        dtype, spec = _dtype(ctx.config), losses.get(phase.loss)
        make, extra = step_lib.make_train_step, {}
        if _chunked(ctx):
            make, extra = step_lib.make_train_chunk, {"batch_at": ctx.pipeline.batch_at}
        train = make(model, spec, spec.resolve(dict(phase.loss_params)), mesh=ctx.mesh,
                     teacher_model=teacher.model if teacher else None,
                     use_features=spec.needs_features, dtype=dtype, packed=ctx.packed,
                     **extra)
        ctx.step_cache[key] = (train, step_lib.make_eval_step(
            model, mesh=ctx.mesh, dtype=dtype, packed=ctx.packed))
    return ctx.step_cache[key]


class PhaseTrainer:
    """Runs the epoch loop of one phase; see `train_phase`."""

    def __init__(self, ctx: PhaseContext, phase, model, state: TrainState,
                 teacher: Teacher | None, ckpts: checkpoints.PhaseCheckpoints, key,
                 schedule: Callable | None = None, start_step: int = 0):
        self.ctx, self.phase, self.model, self.teacher = ctx, phase, model, teacher
        self.state, self.ckpts, self.key = state, ckpts, key
        self.new_program = _step_key(phase, teacher) not in ctx.step_cache
        self.train_step, self.eval_step = _compiled_steps(ctx, phase, model, teacher)
        self.spe = ctx.pipeline.steps_per_epoch
        self.total = self.spe * phase.num_epochs
        self.last_ckpt = ""
        # The optimiser's learning-rate schedule (of its step count) and the count at the
        # phase's first step: the lr of phase-local step L is schedule(start_step + L - 1).
        self.schedule, self.start_step = schedule, start_step
        # A 'plateau' schedule: the held-out split is evaluated after every epoch and the
        # optimiser's update scale cut when it stops improving (jaxkd.plateau).
        self.plateau = plateau.from_schedule(dict(phase.schedule))
        # Timing of this process's part of the phase (the run-level ETA, images/s).
        self.compile_s = 0.0      # first train call (trace + compile, or a cache load)
        self.eval_compile_s = 0.0
        self.steps_run = 0
        self.t_start = 0.0
        self.bar_file = sys.stderr

    def lr_at(self, local: int):
        """The learning rate the optimiser applied at phase-local step `local` (1-based):
        a float, or one per run when packed runs' plateau scales differ."""
        if self.schedule is None:
            return None
        lr = float(np.asarray(self.schedule(self.start_step + local - 1)))
        scale = plateau.scale_of(self.state.opt_state) if self.plateau else None
        if scale is None:
            return lr
        lr = lr * scale.astype(np.float64)
        return float(lr.ravel()[0]) if np.all(lr == lr.ravel()[0]) else lr.tolist()

    def _step(self) -> int:
        """The optimiser's step count (packed runs all count the same steps)."""
        return int(np.ravel(jax.device_get(self.state.step))[0])

    def _local_step(self, progress: Progress) -> int:
        return self._step() - progress.start_step

    def _stop_if_nonfinite(self, window, local0: int) -> None:
        """Policy 'stop': a non-finite step in `window` stops the run (NonFiniteError)."""
        if window and self.ctx.config.nonfinite == "stop":
            check_finite(window, self.phase.name, local0, self.ctx.config, self.last_ckpt)

    def _save(self, progress: Progress, window=(), local0: int = 0) -> None:
        """Starts a periodic save; the metrics of steps not logged yet go with it.

        A non-finite step in that window stops the run first (policy 'stop'), so no
        checkpoint is ever written after a step that was not applied.
        """
        self._stop_if_nonfinite(window, local0)
        progress.pending = [{k: np.asarray(v).tolist() for k, v in m.items()}
                            for m in jax.device_get(list(window))]
        step = self._step()
        self.ckpts.save(step, self.state, progress.as_meta(step))
        self.last_ckpt = str(self.ckpts.layout.ckpt / str(step))

    def _log_train(self, window, local0, progress, t0, bar) -> int:
        """Logs a window of steps; returns how many of them were skipped (non-finite)."""
        means = check_finite(window, self.phase.name, local0, self.ctx.config, self.last_ckpt)
        dt = max(time.perf_counter() - t0, 1e-9)
        ips = len(window) * self.ctx.config.batch_size / dt
        rec = dict(phase=self.phase.name, kind="train", step=local0 + len(window),
                   images_per_sec=ips, **means)
        lr = self.lr_at(local0 + len(window))
        if lr is not None:
            rec["lr"] = lr
        self.ctx.writer.write(rec)
        if bar is not None:
            bar.set_postfix(loss=f"{means['loss']:.3f}", img_s=f"{ips:.0f}")
        return means["skipped"]

    def _check_epoch_trained(self, epoch: int, skipped: int, logged: int) -> None:
        """With config.nonfinite='skip': an epoch whose every step was skipped stops the
        run (an overflowing learning rate would otherwise end the phase untrained, exit 0).
        """
        if logged and skipped == logged:
            raise NonFiniteError(
                f"every one of the {logged} steps of epoch {epoch + 1} of phase "
                f"'{self.phase.name}' was non-finite and skipped (config.nonfinite='skip'); "
                f"the phase cannot train like this: lower config.schedule.base_lr or "
                f"config.optimizer.weight_decay. Last good checkpoint: "
                f"{self.last_ckpt or 'none (the phase had not saved one yet)'}")

    def _end_epoch(self, epoch: int, progress: Progress) -> None:
        cfg, phase = self.ctx.config, self.phase
        last = epoch + 1 == phase.num_epochs
        if (epoch + 1) % cfg.eval_every_epochs == 0 or last:
            t = time.perf_counter()
            bar = progress_lib.bar(cfg.progress_bar, self.ctx.pipeline.eval_steps(), 0, f"{phase.name} eval",
                                unit="batch", file=self.bar_file)
            timings = {}
            totals = evaluation_totals(self.eval_step, variables_of(self.state),
                                       self.ctx.pipeline, bar=bar, timings=timings)
            if bar is not None:
                bar.close()
            if self.evals_run == 0:
                self.eval_compile_s = timings.get("first_call", 0.0)
            self.evals_run += 1
            text, examples = self._record_evaluation(totals, epoch, progress)
            self._measure()
            log.info("phase %s epoch %d/%d: %s (evaluated %s examples in %.1f s; %s)",
                     phase.name, epoch + 1, phase.num_epochs, text, examples,
                     time.perf_counter() - t, self._eta((epoch + 1) * self.spe))
        elif self.epochs_run == 0:
            self._measure()
            log.info("phase %s epoch %d/%d done; %s", phase.name, epoch + 1,
                     phase.num_epochs, self._eta((epoch + 1) * self.spe))
        if self.plateau is not None:
            self._plateau_epoch(epoch, progress)
        self.epochs_run += 1
        anchor_every = phase.anchor_every_epochs
        if anchor_every and (epoch + 1) % anchor_every == 0:
            self._save_anchor(epoch + 1)
        # Saved after the evaluation and the anchor: a run resumed from this checkpoint
        # starts the next epoch and must find both already done.
        if not last and self._save_due((epoch + 1) * self.spe, epoch_end=True):
            self._save(progress)

    def _record_evaluation(self, totals: dict, epoch: int,
                           progress: Progress) -> tuple[str, str]:
        """Adds an evaluation (`evaluation_totals`) to the history and metrics.jsonl;
        returns its log text and the number of examples evaluated."""
        res = self._epoch_result(totals, epoch)
        progress.history.append(res)
        self.ctx.writer.write(dict(phase=self.phase.name, kind="eval", **res))
        return accuracy_text(res), str(res["count"])

    def _epoch_result(self, totals: dict, epoch: int) -> dict:
        """One run's evaluation at the end of `epoch` (0-based), as recorded."""
        return dict(evaluation_result(totals), epoch=epoch + 1, step=(epoch + 1) * self.spe)

    def _plateau_epoch(self, epoch: int, progress: Progress) -> None:
        """A 'plateau' schedule's epoch end: evaluates the held-out split, records it and
        cuts the update scale if its metric did not improve ([BAN] Sec. 4.2)."""
        totals = evaluation_totals(self.eval_step, variables_of(self.state),
                                   self.ctx.pipeline, "heldout")
        losses_ = self._record_heldout(totals, epoch, progress)
        value = self.plateau.metric(losses_)
        self.state = plateau.update(self.state, value, self.plateau)
        log.info("phase %s epoch %d/%d: held-out loss %s, %s %s; learning rate now %s",
                 self.phase.name, epoch + 1, self.phase.num_epochs,
                 np.round(losses_, 4).tolist(), self.plateau.monitor,
                 np.round(value, 2).tolist(), self.lr_at(self._local_step(progress) + 1))

    def _record_heldout(self, totals: dict, epoch: int, progress: Progress):
        """Adds a held-out evaluation to metrics.jsonl (kind 'heldout') and to
        `progress.heldout`; returns its mean loss."""
        res = self._epoch_result(totals, epoch)
        progress.heldout.append(res["loss"])
        self.ctx.writer.write(dict(phase=self.phase.name, kind="heldout", **res))
        return res["loss"]

    def _save_anchor(self, epoch: int) -> None:
        """Keeps the state at the end of `epoch` as an anchor ([RCO] route)."""
        self.ckpts.save_anchor(epoch, self.state)

    def _measure(self) -> None:
        """Seconds per step of this process's part of the phase, compiles excluded."""
        if self.steps_run:
            busy = time.perf_counter() - self.t_start - self.compile_s - self.eval_compile_s
            self.ctx.clock.seconds_per_step.pop(self.phase.name, None)   # newest last
            self.ctx.clock.seconds_per_step[self.phase.name] = max(busy, 0.0) / self.steps_run

    def _eta(self, local: int) -> str:
        return self.ctx.clock.describe(self.total - local + self.ctx.clock.steps_after)

    def _first_call(self, seconds: float, steps: int) -> None:
        """Logs the phase's first train call, timed: tracing and compiling happen in it
        (one step per call: the device work is dispatched asynchronously and lands in the
        first window's time; a chunk's k steps are in it, fetched)."""
        self.compile_s = seconds
        if _chunked(self.ctx):
            log.info("phase %s: %s train program of %d step(s) per call in %.1f s "
                     "(config.steps_per_call=%d)", self.phase.name,
                     "compiled" if self.new_program else "reused", steps, seconds,
                     self.ctx.config.steps_per_call)
        elif self.new_program:
            log.info("phase %s: compiled train step in %.1f s", self.phase.name, seconds)
        else:
            log.info("phase %s: train step reused from an earlier phase (first call "
                     "%.2f s)", self.phase.name, seconds)

    def _save_due(self, local: int, *, epoch_end: bool) -> bool:
        """Whether a periodic checkpoint is due after phase-local step `local`.

        Mid-epoch saves happen inside the step loop; an epoch's last step is saved by
        `_end_epoch`, after that epoch's evaluation and anchor.
        """
        every = self.ctx.config.checkpoint_every_steps
        if not every:
            return epoch_end
        return local % every == 0 and (epoch_end or local % self.spe != 0)

    def run(self, progress: Progress) -> Progress:
        local = self._local_step(progress)
        self.bar_file = sys.stderr
        bar = progress_lib.bar(self.ctx.config.progress_bar, self.total, local, self.phase.name,
                            file=self.bar_file)
        if bar is None:
            return self._run(progress, local, None)
        # Log lines (and stray stderr writes) go through tqdm.write while the bar is open.
        with progress_lib.tqdm_logging():
            try:
                return self._run(progress, local, bar)
            finally:
                bar.close()

    def _run(self, progress: Progress, local: int, bar) -> Progress:
        cfg = self.ctx.config
        self.epochs_run = self.evals_run = 0
        self.t_start = start = time.perf_counter()
        window = list(progress.pending)  # a resumed window: metrics saved with the state
        first = True
        for epoch in range(local // self.spe, self.phase.num_epochs):
            local0, t0 = local - len(window), time.perf_counter()
            skipped, logged = 0, 0   # skipped: per run when packed
            data_epoch = self.phase.data_epoch_offset + epoch   # this phase's own stream
            for steps, call in self._calls(data_epoch, local, window):
                t = time.perf_counter()
                window += call()
                if first:
                    # images/s of the first window counts from here: without the compile.
                    self._first_call(time.perf_counter() - t, steps)
                    first, t0 = False, time.perf_counter()
                local += steps
                self.steps_run += steps
                if bar is not None:
                    bar.update(steps)
                if len(window) >= cfg.log_every_steps or local % self.spe == 0:
                    progress.wall_time += time.perf_counter() - start
                    start = time.perf_counter()
                    skipped = skipped + np.asarray(self._log_train(window, local0,
                                                                   progress, t0, bar))
                    logged += len(window)
                    window, local0, t0 = [], local, time.perf_counter()
                if self._save_due(local, epoch_end=False):
                    self._save(progress, window, local0)
            progress.wall_time += time.perf_counter() - start
            start = time.perf_counter()
            self._check_epoch_trained(epoch, skipped, logged)
            self._end_epoch(epoch, progress)
        return progress

    def _calls(self, data_epoch: int, local: int, window: list):
        """The train calls of the rest of an epoch from phase-local step `local`.

        Yields (steps, call): `call()` trains that many steps and returns their metrics.
        One step per call, or (`_chunked`) chunks of `config.steps_per_call` steps whose
        lengths follow `window` (read when each chunk is due) and `_chunk_length`.
        """
        if not _chunked(self.ctx):
            for batch in self.ctx.pipeline.train_batches(data_epoch,
                                                         start_step=local % self.spe):
                yield 1, functools.partial(self._call_step, batch)
            return
        inputs = self.ctx.pipeline.train_inputs(data_epoch)
        first_step = local % self.spe
        while first_step < self.spe:
            k = self._chunk_length(local, window)
            steps = np.arange(first_step, first_step + k, dtype=np.int32)
            yield k, functools.partial(self._call_chunk, inputs, data_epoch, steps)
            first_step, local = first_step + k, local + k

    def _call_step(self, batch) -> list:
        self.state, metrics = self.train_step(self.state, self.teacher_vars, batch, self.key)
        return [metrics]

    def _chunk_length(self, local: int, window: list) -> int:
        """Steps of the next chunk from phase-local step `local`: at most
        `config.steps_per_call`, ending at the epoch's end, the logging window's end and
        the next periodic checkpoint, so records and checkpoints fall on the same steps as
        one step per call."""
        cfg = self.ctx.config
        ends = [cfg.steps_per_call, self.spe - local % self.spe,
                cfg.log_every_steps - len(window)]
        if cfg.checkpoint_every_steps:
            ends.append(cfg.checkpoint_every_steps - local % cfg.checkpoint_every_steps)
        return max(1, min(ends))

    def _call_chunk(self, inputs, data_epoch: int, steps: np.ndarray) -> list[dict]:
        """Runs one chunk; returns its per-step metrics (fetched: one sync per chunk)."""
        self.state, metrics = self.train_step(self.state, self.teacher_vars, inputs,
                                              data_epoch, steps, self.key)
        fetched = jax.device_get(metrics)
        return [{k: v[i] for k, v in fetched.items()} for i in range(len(steps))]

    @property
    def teacher_vars(self):
        return self.teacher.variables if self.teacher else None


def history_summary(history: list, num_epochs: int) -> dict:
    """Best and last test accuracy of a phase from its evaluation history.

    `best_top5` is the top-5 of the best-top-1 evaluation (the papers report both numbers
    of one model), not the highest top-5 of any epoch; ties go to the earliest epoch.
    `last_perplexity` / `best_perplexity`: exp of the last / lowest test loss, a language
    model's per-token perplexity ([BAN] Table 6; for a classifier exp of its test CE).
    """
    if not history:
        return {}
    best = max(history, key=lambda r: r["top1"])
    last = history[-1]
    summary = {"best_top1": best["top1"], "best_top5": best["top5"],
               "best_epoch": best["epoch"], "last_top1": last["top1"],
               "last_top5": last["top5"], "epochs": num_epochs}
    if all("loss" in r for r in history):
        summary.update(last_loss=last["loss"], last_perplexity=perplexity(last["loss"]),
                       best_perplexity=min(perplexity(r["loss"]) for r in history))
    return summary


def perplexity(loss: float) -> float:
    """exp of a mean cross-entropy: a language model's per-token perplexity."""
    return float(plateau.perplexity(loss))


def _restart_warning(phase: str, lost_step: int, ckpts) -> None:
    """Says so when a phase that had made progress restarts from its first step.

    That happens after a crash before the phase's first checkpoint was committed, or when
    its `ckpt/` folder was deleted. The phase's start is deterministic, so the redone steps
    reproduce the lost ones; the metrics of the lost steps were dropped.
    """
    if lost_step:
        log.warning("phase %s: metrics.jsonl showed progress up to step %d but %s holds no "
                    "checkpoint; restarting the phase from its first step (the phase is "
                    "deterministic: the redone steps reproduce the lost ones)", phase,
                    lost_step, ckpts.layout.ckpt)


def train_phase(ctx: PhaseContext, phase, model, init_state: TrainState, *,
                teacher: Teacher | None, key, start_step: int = 0,
                schedule: Callable | None = None) -> tuple[TrainState, dict]:
    """Trains one phase to its end, resuming from its newest usable checkpoint.

    Args:
        ctx: the run's shared context.
        phase: a `jaxkd.plans.Phase`.
        model: the student module.
        init_state: the replicated state to start from (fresh or inherited).
        teacher: the phase's teacher, or None.
        key: the phase's training key (per-step keys fold in the step number).
        start_step: the optimiser step the phase starts at (non-zero for `continue` phases).
        schedule: the optimiser's learning rate as a function of its step count (what
            `make_optimizer` got); each train record of metrics.jsonl then carries `lr`,
            its value at the window's last step.

    Returns:
        (final state, the phase's record), after the final checkpoint is committed.
    """
    phase_dir = workdir_lib.phase_dir(ctx.workdir, phase.name)
    ckpts = checkpoints.PhaseCheckpoints(phase_dir, keep=ctx.config.keep_checkpoints)
    state, progress = init_state, Progress(start_step=start_step)
    restored = ckpts.restore_latest(checkpoints.abstract_like(init_state))
    if restored is not None:
        state, meta = restored
        progress = Progress.from_meta(meta)
        ctx.writer.drop_after(phase.name, meta["step"] - meta["start_step"])
        log.info("phase %s: resumed at step %d", phase.name, meta["step"])
    else:
        _restart_warning(phase.name, ctx.writer.drop_after(phase.name, 0), ckpts)
    trainer = PhaseTrainer(ctx, phase, model, state, teacher, ckpts, key, schedule=schedule,
                           start_step=progress.start_step)
    try:
        progress = trainer.run(progress)
    except BaseException:
        # Lets the periodic saves already started (good states) commit. Not in a
        # multi-process run: a failure there usually means a lost peer, and the commit's
        # barrier would wait for it.
        if jax.process_count() == 1:
            ckpts.close()
        raise
    step = int(jax.device_get(trainer.state.step))
    record = dict(name=phase.name, role=phase.role, model=phase.model,
                  **history_summary(progress.history, phase.num_epochs),
                  **plateau.summary(progress.heldout),
                  wall_time=progress.wall_time, history=progress.history,
                  checkpoint=str(workdir_lib.PhaseLayout(phase_dir).final))
    ckpts.save_final(trainer.state, dict(progress.as_meta(step), record=record))
    ckpts.close()
    ctx.writer.flush()
    log.info("phase %s: final checkpoint committed (parameters fingerprint %s); workdir %s "
             "holds %.1f MB", phase.name, fingerprint(trainer.state.params), ctx.workdir,
             disk_usage(ctx.workdir) / 2**20)
    return trainer.state, record


def fingerprint(tree) -> str:
    """A short SHA-256 of a replicated pytree's values (this process's copy).

    Equal fingerprints on every process of a multi-host run, or in two runs, mean
    bit-identical parameters.
    """
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(tree):
        digest.update(np.ascontiguousarray(np.asarray(leaf.addressable_data(0))).tobytes())
    return digest.hexdigest()[:16]


def disk_usage(path: pathlib.Path) -> int:
    """Bytes of the regular files under `path` (files that vanish meanwhile are skipped)."""
    total = 0
    for f in pathlib.Path(path).rglob("*"):
        try:
            total += f.stat().st_size if f.is_file() else 0
        except OSError:
            pass
    return total

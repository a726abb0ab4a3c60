"""The jitted train and eval steps, one program each per phase.

`train_step(state, teacher, batch, rng) -> (state, metrics)` runs the teacher forward in
inference mode (when the phase has a teacher) and the student forward/backward in one
program. The teacher's variables are an argument, never a closure, so the same compiled
program serves any teacher checkpoint of the same architecture. The loss is a
`jaxkd.losses.LossSpec` chosen by name: the step has no knowledge of methods.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, PartitionSpec as P

from jaxkd import losses
from jaxkd.engine import sharding
from jaxkd.engine.state import TrainState


def _forward(model, variables, images, *, train, features, rngs=None, tail=None):
    """Runs a model; returns (Outputs, new batch_stats or None). `tail`: a language
    model's logits (and features) of its last `tail` positions only."""
    if train:
        out, updates = model.apply(variables, images, train=True, return_features=features,
                                   mutable=["batch_stats"], rngs=rngs)
    else:
        out, updates = model.apply(variables, images, train=False,
                                   return_features=features), None
    logits, feats = out if features else (out, None)
    if logits.ndim == 3:   # a language model: every token is an example ([B*T, V])
        if tail is not None:
            logits = logits[:, -tail:]
            feats = None if feats is None else feats[:, -tail:]
        logits = logits.reshape(-1, logits.shape[-1])
        feats = None if feats is None else feats.reshape(-1, feats.shape[-1])
    return losses.Outputs(logits.astype(jnp.float32), feats), updates


def model_inputs(batch: dict, dtype):
    """The batch's images in the compute dtype; signed-integer inputs (token ids) as they
    are (a bfloat16 id above 256 would be rounded)."""
    x = batch["image"]
    return x if jnp.issubdtype(x.dtype, jnp.signedinteger) else x.astype(dtype)


def reset_carry(batch_stats, reset):
    """`batch_stats` with a recurrent model's carried state (entries named `carry*`)
    zeroed in the rows where `reset` (bool[B], an epoch's first window) is True."""
    if reset is None:
        return batch_stats

    def zero(path, leaf):
        carried = any(str(getattr(k, "key", "")).startswith("carry") for k in path)
        return jnp.where(reset[:, None], jnp.zeros_like(leaf), leaf) if carried else leaf
    return jax.tree_util.tree_map_with_path(zero, batch_stats)


def _tree_all_finite(tree) -> jax.Array:
    """Whether every floating-point leaf of `tree` is finite (integer counters pass)."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _select(pred, new, old):
    """`new` where pred else `old`, leaf by leaf (a non-finite step never lands)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)


def _teacher_outputs(teacher_model, teacher, images, features, context=None):
    """Inference-mode teacher forward; an ensemble teacher averages members' probabilities.

    `context` (a language model's batch: the tokens before each window,
    `jaxkd.data.text_pipeline`): the teacher reads them first, from a zero state, and its
    outputs for the window are the distillation targets, so a window's first tokens are
    predicted with context although the teacher carries no state across steps.
    """
    if teacher_model is None:
        return None
    tail = None
    if context is not None:
        images, tail = jnp.concatenate([context, images], axis=1), images.shape[1]
    run = lambda t, f: _forward(teacher_model, t, images, train=False, features=f,
                                tail=tail)[0]
    if isinstance(teacher, (list, tuple)):
        return losses.Outputs(
            losses.ensemble_logits([run(t, False).logits for t in teacher]), None)
    return jax.tree_util.tree_map(jax.lax.stop_gradient, run(teacher, features))


def train_step_fn(model, loss_spec: losses.LossSpec, loss_params: Mapping[str, Any], *,
                  teacher_model=None, use_features: bool = False,
                  dtype=jnp.float32) -> Callable:
    """The train step of one phase as a plain (traceable) function.

    `make_train_step` jits it for one step per call, `make_train_chunk` scans it over many
    steps in one program: the same computation either way.

    Args:
        model: the student Linen module.
        loss_spec: the per-example objective (`jaxkd.losses.get(name)`).
        loss_params: its hyper-parameters (Python scalars; baked in as constants).
        teacher_model: the teacher's Linen module, or None for a phase without a teacher.
        use_features: whether the loss reads penultimate features (hint loss).
        dtype: compute dtype of the images fed to the models.

    Returns:
        `train_step(state, teacher, batch, key) -> (state, metrics)`; the per-step random
        key is `fold_in(key, state.step)`, so a resumed run draws the same numbers.
        metrics: `loss`, `top1`, `grad_norm`, `finite`, and `loss_<term>` for each
        weighted part of a two-term loss (`loss_spec.terms`: `loss_ce`, `loss_kd`, ...),
        batch means that add up to `loss`.
    """
    params = dict(loss_params)

    def train_step(state: TrainState, teacher, batch, key):
        rng = jax.random.fold_in(key, state.step)
        dropout_rng, loss_rng = jax.random.split(rng)
        images, labels = model_inputs(batch, dtype), batch["label"].reshape(-1)
        teacher_out = _teacher_outputs(teacher_model, teacher, images, use_features,
                                       batch.get("context"))
        batch_stats = reset_carry(state.batch_stats, batch.get("reset"))

        def loss_fn(p):
            variables = {"params": p, "batch_stats": batch_stats}
            out, updates = _forward(model, variables, images, train=True,
                                    features=use_features, rngs={"dropout": dropout_rng})
            # A two-term loss's weighted parts are logged too (aux outputs: no gradient
            # flows through them); the loss is their sum, computed once.
            per_example, parts = loss_spec.per_example_and_terms(
                out, teacher_out, labels, loss_rng, **params)
            terms = {f"loss_{name}": jnp.mean(value) for name, value in parts.items()}
            return jnp.mean(per_example), (out.logits, updates, terms)

        (loss, (logits, updates, terms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params)
        new_state = state.apply_gradients(grads=grads, batch_stats=updates["batch_stats"])
        # The guard covers what would land, not only its cause: a finite gradient times an
        # overflowing learning rate (or weight decay) gives non-finite parameters or
        # momentum, and such a state must never be applied nor checkpointed.
        finite = (jnp.isfinite(loss) & _tree_all_finite(grads)
                  & _tree_all_finite((new_state.params, new_state.opt_state,
                                      new_state.batch_stats)))
        new_state = _select(finite, new_state, state.replace(step=state.step + 1))
        metrics = {
            "loss": loss,
            "top1": jnp.mean(jnp.argmax(logits, -1) == labels),
            "grad_norm": optax.tree.norm(grads),
            "finite": finite,
            **terms,
        }
        return new_state, metrics

    return train_step


def make_train_step(model, loss_spec: losses.LossSpec, loss_params: Mapping[str, Any], *,
                    mesh: Mesh, teacher_model=None, use_features: bool = False,
                    dtype=jnp.float32, packed: bool = False) -> Callable:
    """Builds the jitted, sharded train step of one phase (`train_step_fn`).

    The batch is split along the ('data',) `mesh`; state and teacher are replicated.
    `packed` (`config.num_seeds` > 1): every argument has a leading run axis (stacked
    states, teachers, batches and keys) and the step is mapped over it (`map_runs`: a
    `jax.vmap` on accelerators, a loop inside the program on XLA:CPU), so each run keeps
    its own BatchNorm statistics and its own non-finite guard; on a ('runs', 'data')
    mesh the run axis is split over 'runs' and each run's batch over 'data'.

    Returns:
        `train_step(state, teacher, batch, key) -> (state, metrics)` (see `train_step_fn`;
        packed: metrics of shape [runs]).
    """
    step = train_step_fn(model, loss_spec, loss_params, teacher_model=teacher_model,
                         use_features=use_features, dtype=dtype)
    state = _state_sharding(mesh, packed)
    return jax.jit(_vmap_runs(step, mesh) if packed else step,
                   in_shardings=(state, state, sharding.batch_sharding(mesh, packed=packed),
                                 state),
                   out_shardings=(state, state), donate_argnums=(0,))


def _state_sharding(mesh: Mesh, packed: bool):
    """Unpacked: replicated; packed: the run axis split over the mesh's 'runs' axis."""
    return sharding.run_sharded(mesh) if packed else sharding.replicated(mesh)


#: How `map_runs` batches packed runs: None (vmap on accelerators, a loop on XLA:CPU),
#: True (always vmap) or False (always loop); read when a step is built.
VECTORIZE_RUNS: bool | None = None


def map_runs(fn: Callable, in_axes=0) -> Callable:
    """`fn` over a leading run axis (`in_axes` as `jax.vmap`'s): `jax.vmap` on GPUs and
    TPUs, an unrolled loop of the runs inside the one program on XLA:CPU.

    A vmapped convolution is one grouped convolution over the runs, which XLA:CPU runs
    3-5x slower than the runs' plain convolutions one after the other (ResNet-20, 2 and 4
    runs per device: `benchmarks/packing.py --runs=vmap`, BENCHMARKS.md); an accelerator
    gains from the fewer, larger kernels. Both compute each run alone (BatchNorm, guard).
    """
    vectorize = VECTORIZE_RUNS
    if vectorize is None:
        vectorize = jax.default_backend() != "cpu"
    if vectorize:
        return jax.vmap(fn, in_axes=in_axes)

    def looped(*args):
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        runs = next(jax.tree_util.tree_leaves(a)[0].shape[0] for a, ax in zip(args, axes)
                    if ax == 0 and jax.tree_util.tree_leaves(a))
        outs = [fn(*[a if ax is None else jax.tree_util.tree_map(lambda x, i=i: x[i], a)
                     for a, ax in zip(args, axes)]) for i in range(runs)]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outs)
    return looped


def _vmap_runs(fn: Callable, mesh: Mesh) -> Callable:
    """`fn` over a leading run axis of every argument (`map_runs`), each device computing
    only its own runs.

    On a ('runs', 'data') mesh the mapped `fn` is a `jax.shard_map` manual over 'runs'
    (each group of devices gets its runs' slices) and automatic over 'data' (a run's batch
    split as unpacked). Left to the SPMD partitioner, a vmapped convolution (a grouped
    convolution over the runs) is not split by group: every device would gather every
    run's weights and activations (40 all-gathers in a ResNet-8 step).
    """
    runs = sharding.runs_axis(mesh)
    if runs is None:
        return map_runs(fn)

    def packed(*args):
        return jax.shard_map(map_runs(fn), mesh=mesh, in_specs=(P(runs),) * len(args),
                             out_specs=P(runs), axis_names={runs}, check_vma=False)(*args)
    return packed


def make_train_chunk(model, loss_spec: losses.LossSpec, loss_params: Mapping[str, Any], *,
                     mesh: Mesh, batch_at: Callable, teacher_model=None,
                     use_features: bool = False, dtype=jnp.float32,
                     packed: bool = False) -> Callable:
    """Builds one program that runs several train steps (`config.steps_per_call`).

    A `lax.scan` of `train_step_fn` over the steps (unrolled on CPU), each batch made
    inside the program by `batch_at(inputs, epoch, step)` (`DevicePipeline.batch_at`: the
    batch `train_batches` would yield), so a chunk of k steps is one call and no host work.
    `packed`: state, teacher, inputs and key have a leading run axis; each scanned step
    is the `jax.vmap` of one step of every run (see `make_train_step`).

    Returns:
        `chunk(state, teacher, inputs, epoch, steps, key) -> (state, metrics)`: `inputs`
        is `DevicePipeline.train_inputs(epoch)`, `steps` int32[k] the epoch's step
        indices, `metrics` the per-step metrics of `train_step_fn` stacked along a leading
        axis of length k (packed: [k, runs]).
    """
    step = train_step_fn(model, loss_spec, loss_params, teacher_model=teacher_model,
                         use_features=use_features, dtype=dtype)

    def one_step(state, teacher, inputs, key, epoch, index):
        return step(state, teacher, batch_at(inputs, epoch, index), key)

    if packed:
        one_step = map_runs(one_step, in_axes=(0, 0, 0, 0, None, None))

    # XLA:CPU runs a while loop's body far slower than the same computation as a program
    # of its own (a ResNet-8 train step: 33x, jax 0.10.2; benchmarks/compiled_chunks.py),
    # so on CPU the chunk is unrolled; GPUs and TPUs run a rolled loop.
    unroll = jax.default_backend() == "cpu"

    def chunk(state, teacher, inputs, epoch, steps, key):
        def body(state, index):
            return one_step(state, teacher, inputs, key, epoch, index)
        return jax.lax.scan(body, state, steps, unroll=unroll)

    if packed and sharding.runs_axis(mesh):   # each device group scans its own runs
        runs = sharding.runs_axis(mesh)
        chunk = jax.shard_map(chunk, mesh=mesh, in_specs=(P(runs),) * 3 + (P(), P(), P(runs)),
                              out_specs=(P(runs), P(None, runs)), axis_names={runs},
                              check_vma=False)
    metrics = sharding.run_sharded(mesh, leading=1) if packed else sharding.replicated(mesh)
    return jax.jit(chunk, out_shardings=(_state_sharding(mesh, packed), metrics),
                   donate_argnums=(0,))


def make_eval_step(model, *, mesh: Mesh, dtype=jnp.float32, packed: bool = False) -> Callable:
    """Builds `eval_step(variables, batch) -> sums` over the unmasked examples.

    The sums (`count`, `correct1`, `correct5`, `loss`) add up over batches on the device, so
    the padded last batch counts each real example exactly once. `packed`: variables and
    batch have a leading run axis, and so do the sums.
    """

    def eval_step(variables, batch):
        out, _ = _forward(model, variables, model_inputs(batch, dtype), train=False,
                          features=False)
        return eval_sums(out.logits, batch["label"].reshape(-1), batch["mask"].reshape(-1))

    state = _state_sharding(mesh, packed)
    return jax.jit(_vmap_runs(eval_step, mesh) if packed else eval_step,
                   in_shardings=(state, sharding.batch_sharding(mesh, packed=packed)),
                   out_shardings=state)


def eval_sums(logits, labels, mask) -> dict:
    """Masked sums of top-1/top-5 hits and cross-entropy for a batch of logits."""
    mask = mask.astype(jnp.float32)
    k = min(5, logits.shape[-1])
    top5 = jax.lax.top_k(logits, k)[1]
    hit5 = jnp.any(top5 == labels[:, None], axis=-1)
    hit1 = jnp.argmax(logits, -1) == labels
    ce = losses.cross_entropy(logits, labels)
    return {"count": jnp.sum(mask), "correct1": jnp.sum(hit1 * mask),
            "correct5": jnp.sum(hit5 * mask), "loss": jnp.sum(ce * mask)}


def make_predict_step(model, *, mesh: Mesh, features: bool = False, dtype=jnp.float32):
    """Builds `predict(variables, batch) -> (logits, features or None)` for analysis."""

    def predict(variables, batch):
        out, _ = _forward(model, variables, model_inputs(batch, dtype), train=False,
                          features=features)
        return out.logits, out.features

    return jax.jit(predict, in_shardings=(sharding.replicated(mesh),
                                          sharding.batch_sharding(mesh)))

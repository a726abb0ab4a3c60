"""Secondary information and agreement statistics over logits, features and labels.

Pure numpy functions (they accept numpy or jax arrays and return numpy values or floats),
the statistics the tolerant-teacher paper uses to look inside a generation, plus agreement
between a student and its teacher, accuracy and calibration. `jaxkd.analysis` re-exports
them.

References:
    [TT] Yang et al., "Knowledge Distillation in Generations: More Tolerant Teachers Educate
        Better Students", 2018: Table 1 (top-k confidences), Figure 1 (2nd-class matrix),
        Eqn 4 and Table 2 (Dist^C, Dist^S).
    [KD] Hinton et al., "Distilling the Knowledge in a Neural Network", 2015, Eqn 2 (the
        KL between teacher and student distributions).
    [RCO] Jin et al., ICCV 2019, Algorithm 2 (H: the KL of the student to an anchor).
    [ECE] Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, Eqn 3.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxkd import losses

ECE_BINS = 15


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def softmax(logits) -> np.ndarray:
    """Row-wise softmax of `[N, C]` logits, computed stably in float64."""
    z = _f64(logits)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits) -> np.ndarray:
    """Row-wise log-softmax of `[N, C]` logits in float64."""
    z = _f64(logits)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def ranked_classes(logits) -> np.ndarray:
    """Classes of each row sorted by decreasing score (ties: lower class index first)."""
    return np.argsort(-_f64(logits), axis=-1, kind="stable")


def topk_confidences(logits, k: int = 4) -> np.ndarray:
    """Mean confidence on the top-1..top-k classes, each sample sorted individually.

    Args:
        logits: `[N, C]` scores of N samples.
        k: how many ranks to report (at most C).

    Returns:
        float64[k]: entry r is the mean over samples of the (r+1)-th largest softmax score.

    References:
        [TT] Table 1 (confidence distribution on the top-4 classes, training set).
    """
    probs = softmax(logits)
    if not 1 <= k <= probs.shape[-1]:
        raise ValueError(f"k must be in [1, {probs.shape[-1]}], got {k}")
    return -np.sort(-probs, axis=-1)[:, :k].mean(axis=0)


def accuracy(logits, labels) -> float:
    """Top-1 accuracy: fraction of rows whose highest score is at the label."""
    return float(np.mean(np.argmax(_f64(logits), -1) == np.asarray(labels)))


def second_class(logits) -> np.ndarray:
    """The class with the second-highest score of each row, int[N]."""
    return ranked_classes(logits)[:, 1]


def second_class_matrix(logits, labels, num_classes: int, *,
                        normalize: bool = True) -> np.ndarray:
    """The C x C matrix of (true class, class with the second-highest score).

    Args:
        logits: `[N, C]` scores.
        labels: int[N] ground-truth classes.
        num_classes: C.
        normalize: divide each row by its count, so entry (i, j) is the frequency with which
            a sample of class i has its second-highest score at class j (rows of absent
            classes stay 0); False returns the counts.

    References:
        [TT] Figure 1 (rows: ground truth, columns: class of the second highest score).
    """
    return _pair_counts(np.asarray(labels), second_class(logits), num_classes, normalize)


def second_class_pair_matrix(logits_a, logits_b, num_classes: int, *,
                             normalize: bool = False) -> np.ndarray:
    """The C x C matrix of (2nd class under model A, 2nd class under model B) per sample.

    Its trace over N is `second_class_agreement`; a teacher that passes its secondary
    information on gives a matrix concentrated on the diagonal.

    References:
        [TT] Section "Towards High-Quality Secondary Information" and Figure 1 (the 2nd-class
        matrices of the patriarch and the first student are similar).
    """
    return _pair_counts(second_class(logits_a), second_class(logits_b), num_classes,
                        normalize)


def second_class_agreement(logits_a, logits_b) -> float:
    """Fraction of samples whose second-highest class is the same under A and B.

    References:
        [TT] Figure 1 (secondary information passed from teacher to student).
    """
    return float(np.mean(second_class(logits_a) == second_class(logits_b)))


def _pair_counts(rows, cols, num_classes: int, normalize: bool) -> np.ndarray:
    counts = np.zeros((num_classes, num_classes), np.float64)
    np.add.at(counts, (np.asarray(rows), np.asarray(cols)), 1.0)
    if not normalize:
        return counts
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def top1_agreement(student_logits, teacher_logits) -> float:
    """Fraction of samples on which student and teacher predict the same class."""
    return float(np.mean(np.argmax(_f64(student_logits), -1) ==
                         np.argmax(_f64(teacher_logits), -1)))


def mean_kl(p_logits, q_logits, temperature: float = 1.0) -> float:
    """Mean over samples of KL(softmax(p / T) || softmax(q / T)), in nats.

    The mean of `jaxkd.losses.kl_divergence` (the one KL of the package; the argument
    order is the divergence's): `mean_kl(teacher, student)` is the KL term a student of
    [KD] / [TT] minimises; `mean_kl(student, anchor)` is RCO's H of Algorithm 2.

    References:
        [KD] Eqn 2 (softened distributions); [TT] Eqn 2; [RCO] Algorithm 2.
    """
    return float(np.mean(np.asarray(losses.kl_divergence(
        jnp.asarray(p_logits, jnp.float32), jnp.asarray(q_logits, jnp.float32),
        temperature=temperature))))


def topk_accuracy(logits, labels, k: int = 1) -> float:
    """Fraction of examples whose label is among the k highest logits."""
    top = np.argsort(-np.asarray(logits), axis=-1)[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=-1)))


def expected_calibration_error(logits, labels, num_bins: int = ECE_BINS) -> float:
    """ECE with equal-width confidence bins: sum_b |B_b|/N * |acc(B_b) - conf(B_b)|.

    Bin b holds the samples whose top softmax score lies in (b/M, (b+1)/M]; empty bins add 0.

    References:
        [ECE] Eqn 3 (acc and conf of a bin: Eqns 1 and 2), with M = 15 bins.
    """
    probs = softmax(logits)
    conf = probs.max(axis=-1)
    hit = (probs.argmax(axis=-1) == np.asarray(labels)).astype(np.float64)
    bins = np.clip(np.ceil(conf * num_bins).astype(int) - 1, 0, num_bins - 1)
    ece = 0.0
    for b in range(num_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def angle(u, v) -> float:
    """arccos of the cosine between two vectors, in radians (cosine clipped to [-1, 1])."""
    u, v = _f64(u), _f64(v)
    cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def class_means(features, labels, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean feature of each class: (float64[C, D] means, bool[C] present)."""
    features, labels = _f64(features), np.asarray(labels)
    sums = np.zeros((num_classes, features.shape[-1]))
    np.add.at(sums, labels, features)
    counts = np.bincount(labels, minlength=num_classes)
    present = counts > 0
    means = np.divide(sums, np.maximum(counts, 1)[:, None])
    return means, present


def superclass_of(fine_labels, coarse_labels) -> dict[int, int]:
    """S(i): the superclass of each fine class seen (its most frequent coarse label)."""
    fine, coarse = np.asarray(fine_labels), np.asarray(coarse_labels)
    out = {}
    for i in np.unique(fine):
        values, counts = np.unique(coarse[fine == i], return_counts=True)
        out[int(i)] = int(values[np.argmax(counts)])
    return out


def semantic_distances(features, fine_labels, coarse_labels) -> dict[str, float]:
    """Dist^C and Dist^S of penultimate features, in radians.

    v_i^C is the mean feature of fine class i, v_j^S the mean of the fine-class means of
    superclass j, v^A the mean of the superclass means (the paper's v^A = 1/20 sum_j v_j^S;
    with balanced classes these are the plain means over samples):

        Dist^C = mean_i arccos(cos(v_i^C, v_{S(i)}^S))
        Dist^S = mean_j arccos(cos(v_j^S, v^A))

    Larger Dist^C: fine classes are far apart inside their superclass (little secondary
    information); larger Dist^S: superclasses are well separated.

    Args:
        features: float[N, D] penultimate activations (globally pooled).
        fine_labels: int[N] fine classes.
        coarse_labels: int[N] superclasses.

    Returns:
        {'dist_c': ..., 'dist_s': ...}.

    References:
        [TT] Eqn 4 and Table 2.
    """
    fine, coarse = np.asarray(fine_labels), np.asarray(coarse_labels)
    num_fine = int(fine.max()) + 1
    v_c, present = class_means(features, fine, num_fine)
    parent = superclass_of(fine, coarse)
    supers = sorted(set(parent.values()))
    v_s = {j: np.mean([v_c[i] for i in parent if parent[i] == j], axis=0) for j in supers}
    v_a = np.mean([v_s[j] for j in supers], axis=0)
    dist_c = np.mean([angle(v_c[i], v_s[parent[i]]) for i in parent if present[i]])
    dist_s = np.mean([angle(v_s[j], v_a) for j in supers])
    return {"dist_c": float(dist_c), "dist_s": float(dist_s)}

"""jaxkd.analysis.stats against hand-computed values: accuracies, top-k confidences ([TT]
Table 1), 2nd-class matrices ([TT] Figure 1), agreement, KL, ECE and Dist^C / Dist^S
([TT] Eqn 4)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import analysis
from jaxkd.analysis import stats as secondary


def _logits_of(probs):
    return np.log(np.asarray(probs, np.float64))


# -- top-k confidences ([TT] Table 1) ---------------------------------------------------


def test_topk_confidences_sorts_each_sample_before_averaging():
    logits = _logits_of([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    np.testing.assert_allclose(analysis.topk_confidences(logits, 3), [0.55, 0.30, 0.15])
    np.testing.assert_allclose(analysis.topk_confidences(logits, 2), [0.55, 0.30])


def test_topk_confidences_accept_jax_arrays_and_check_k():
    logits = jnp.asarray(_logits_of([[0.7, 0.2, 0.1]]), jnp.float32)
    np.testing.assert_allclose(analysis.topk_confidences(logits, 1), [0.7], rtol=1e-6)
    with pytest.raises(ValueError, match="k must be"):
        analysis.topk_confidences(logits, 4)


def test_accuracy_and_topk_accuracy():
    logits = np.array([[3., 2, 1], [1, 3, 2], [2, 1, 3], [1, 2, 3]])
    labels = np.array([0, 2, 2, 1])
    assert analysis.accuracy(logits, labels) == 0.5
    assert analysis.topk_accuracy(logits, labels, 2) == 1.0


# -- 2nd-class matrices ([TT] Figure 1) -------------------------------------------------


_LOGITS = np.array([[3., 2, 1], [1, 3, 2], [2, 1, 3], [1, 2, 3]])


_LABELS = np.array([0, 1, 2, 2])


def test_second_class_is_the_runner_up():
    np.testing.assert_array_equal(analysis.second_class(_LOGITS), [1, 2, 0, 1])


def test_second_class_matrix_counts_and_row_frequencies():
    counts = analysis.second_class_matrix(_LOGITS, _LABELS, 3, normalize=False)
    expected = np.zeros((3, 3))
    expected[0, 1] = expected[1, 2] = expected[2, 0] = expected[2, 1] = 1
    np.testing.assert_array_equal(counts, expected)
    freq = analysis.second_class_matrix(_LOGITS, _LABELS, 4)
    np.testing.assert_allclose(freq[2], [0.5, 0.5, 0, 0])
    np.testing.assert_allclose(freq[3], 0.0)   # class absent: a row of zeros, not NaN


def test_second_class_pair_matrix_and_agreement_between_two_phases():
    other = np.array([[3., 1, 2], [1, 3, 2], [1, 2, 3], [0, 2, 3]])   # 2nd: 2, 2, 1, 1
    pair = analysis.second_class_pair_matrix(_LOGITS, other, 3)
    expected = np.zeros((3, 3))
    expected[1, 2] = expected[2, 2] = expected[0, 1] = expected[1, 1] = 1
    np.testing.assert_array_equal(pair, expected)
    assert analysis.second_class_agreement(_LOGITS, other) == 0.5
    assert analysis.second_class_agreement(_LOGITS, _LOGITS) == 1.0


# -- agreement, KL, calibration ---------------------------------------------------------


def test_top1_agreement_and_mean_kl():
    t = _logits_of([[0.5, 0.5], [0.9, 0.1]])
    s = _logits_of([[0.25, 0.75], [0.9, 0.1]])
    assert analysis.top1_agreement(s, t) == 0.5    # argmax of a tie is class 0
    kl_first = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert analysis.mean_kl(t, s) == pytest.approx(kl_first / 2)
    assert analysis.mean_kl(s, s) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="temperature"):
        analysis.mean_kl(t, s, temperature=0.0)


def test_mean_kl_temperature_softens_both():
    t, s = np.array([[2.0, 0.0]]), np.array([[0.0, 2.0]])
    p, q = secondary.softmax(t / 2.0)[0], secondary.softmax(s / 2.0)[0]
    assert analysis.mean_kl(t, s, 2.0) == pytest.approx(float(np.sum(p * np.log(p / q))))


def test_expected_calibration_error_constructed_case():
    # Confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.6 (right), labels below.
    logits = _logits_of([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    # bin of 0.9: |0.5 - 0.9| * 2/4 = 0.2;  bin of 0.6: |1.0 - 0.6| * 2/4 = 0.2.
    assert analysis.expected_calibration_error(logits, labels) == pytest.approx(0.4)
    # One bin for everything: |acc - mean conf| = |0.75 - 0.75| = 0.
    assert analysis.expected_calibration_error(logits, labels, num_bins=1) == pytest.approx(0)


def test_expected_calibration_error_of_a_calibrated_bin_is_zero():
    logits = _logits_of([[0.8, 0.2]] * 5)
    labels = np.array([0, 0, 0, 0, 1])               # accuracy 0.8 = confidence
    assert analysis.expected_calibration_error(logits, labels) == pytest.approx(0, abs=1e-12)


# -- Dist^C / Dist^S ([TT] Eqn 4) -------------------------------------------------------


def _unit(theta):
    return np.array([math.cos(theta), math.sin(theta)])


def _features_at_angles(a, b):
    """4 fine classes in 2 superclasses: classes 0/1 at +-a around 0 rad, 2/3 at pi/2 +- b.

    Two samples per class with norms 0.5 and 1.5, so each class mean is the unit vector.
    """
    dirs = [_unit(a), _unit(-a), _unit(math.pi / 2 + b), _unit(math.pi / 2 - b)]
    feats, fine = [], []
    for i, d in enumerate(dirs):
        feats += [0.5 * d, 1.5 * d]
        fine += [i, i]
    coarse = [0 if i < 2 else 1 for i in fine]
    return np.array(feats), np.array(fine), np.array(coarse)


def test_semantic_distances_at_known_angles():
    a, b = 0.3, 0.5
    feats, fine, coarse = _features_at_angles(a, b)
    dist = analysis.semantic_distances(feats, fine, coarse)
    # Each class is a (resp. b) away from its superclass mean (on the bisector).
    assert dist["dist_c"] == pytest.approx((a + a + b + b) / 4)
    # v^A lies between the superclass directions 0 and pi/2: the two angles add to pi/2.
    assert dist["dist_s"] == pytest.approx(math.pi / 4)


def test_semantic_distances_uneven_superclasses():
    # Superclass 0: classes at 0 and 0.4 rad (mean at 0.2); superclasses 1, 2: one class each.
    feats = np.array([_unit(0.0), _unit(0.4), _unit(1.5), _unit(3.0)])
    fine, coarse = np.array([0, 1, 2, 3]), np.array([0, 0, 1, 2])
    dist = analysis.semantic_distances(feats, fine, coarse)
    assert dist["dist_c"] == pytest.approx((0.2 + 0.2 + 0.0 + 0.0) / 4)
    # v^A is the mean of the three superclass means (not of the four samples).
    v_s = [(_unit(0.0) + _unit(0.4)) / 2, _unit(1.5), _unit(3.0)]
    v_a = np.mean(v_s, axis=0)
    expected = np.mean([analysis.angle(v, v_a) for v in v_s])
    assert dist["dist_s"] == pytest.approx(expected)
    assert dist["dist_s"] == pytest.approx(0.9466165, abs=1e-6)   # the formula, evaluated once
    assert analysis.angle(_unit(0.2), _unit(1.2)) == pytest.approx(1.0)


def test_superclass_of_takes_the_majority_coarse_label():
    assert secondary.superclass_of([0, 0, 0, 1], [3, 3, 1, 2]) == {0: 3, 1: 2}


# -- the building blocks -------------------------------------------------------------------
def test_softmax_and_log_softmax_are_stable_for_huge_logits():
    logits = np.array([[1000.0, 1000.0 + math.log(3.0)], [-1e4, -1e4]])
    np.testing.assert_allclose(secondary.softmax(logits), [[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_allclose(secondary.log_softmax(logits),
                               np.log([[0.25, 0.75], [0.5, 0.5]]))
    assert secondary.softmax(logits).dtype == np.float64


def test_ranked_classes_break_ties_by_the_lower_index():
    np.testing.assert_array_equal(analysis.ranked_classes([[1.0, 3.0, 1.0, 2.0]]),
                                  [[1, 3, 0, 2]])


def test_topk_accuracy_with_k_of_every_class_is_one():
    logits, labels = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]), np.array([0, 0])
    assert analysis.topk_accuracy(logits, labels, 1) == 0.5
    assert analysis.topk_accuracy(logits, labels, 3) == 1.0
    assert analysis.topk_accuracy(logits, labels, 10) == 1.0


def test_class_means_mark_absent_classes():
    feats = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0]])
    means, present = analysis.class_means(feats, [0, 0, 2], 4)
    np.testing.assert_allclose(means, [[2.0, 1.0], [0.0, 0.0], [0.0, 5.0], [0.0, 0.0]])
    np.testing.assert_array_equal(present, [True, False, True, False])


def test_angle_is_in_radians_and_clipped():
    assert analysis.angle([1.0, 0.0], [0.0, 2.0]) == pytest.approx(math.pi / 2)
    assert analysis.angle([1.0, 1.0], [-3.0, -3.0]) == pytest.approx(math.pi)
    assert analysis.angle([0.2, 0.7], [0.2, 0.7]) == 0.0     # cos rounds to 1 + 2e-16

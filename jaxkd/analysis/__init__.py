"""Analysis of trained phases: statistics, ensembles, a workdir's evaluation, seeds.

    stats      pure numpy statistics over logits, features and labels (accuracy, top-k
               confidences, 2nd-class matrices, agreement, KL, ECE, Dist^C / Dist^S)
    ensembles  BANE, the TT ensemble, snapshot / SD ensembles and their prefixes
    evaluate   every finished phase of a workdir on a split, and its statistics
    aggregate  several runs' `results.json`: mean +- sample std

References:
    [BAN] Furlanello et al., 2018, Section 3.2; [SD] Yang et al., 2019, Section 4.1;
    [TT] Yang et al., 2018, Table 1, Figure 1, Eqn 4, Tables 2 and 4; [ECE] Guo et al., 2017.
"""

from jaxkd.analysis.aggregate import aggregate_results, load_results, mean_std
from jaxkd.analysis.ensembles import (cumulative_ensembles, ensemble_accuracy, ensemble_of,
                                      ensemble_specs, plan_ensembles, sd_ensemble_scales,
                                      workdir_ensembles)
from jaxkd.analysis.evaluate import (CIFAR10_GROUPS, Evaluation, evaluate_workdir,
                                     phase_statistics, semantic_distance_table,
                                     summarize_evaluations, teacher_agreement)
from jaxkd.analysis.stats import (ECE_BINS, accuracy, angle, class_means,
                                  expected_calibration_error, log_softmax, mean_kl,
                                  ranked_classes, second_class, second_class_agreement,
                                  second_class_matrix, second_class_pair_matrix,
                                  semantic_distances, softmax, superclass_of,
                                  top1_agreement, topk_accuracy, topk_confidences)

__all__ = [
    "CIFAR10_GROUPS", "ECE_BINS", "Evaluation", "accuracy", "aggregate_results", "angle",
    "class_means", "cumulative_ensembles", "ensemble_accuracy", "ensemble_of",
    "ensemble_specs", "evaluate_workdir", "expected_calibration_error", "load_results",
    "log_softmax", "mean_kl", "mean_std", "phase_statistics", "plan_ensembles",
    "ranked_classes", "sd_ensemble_scales", "second_class", "second_class_agreement",
    "second_class_matrix", "second_class_pair_matrix", "semantic_distance_table",
    "semantic_distances", "softmax", "summarize_evaluations", "superclass_of",
    "teacher_agreement", "top1_agreement", "topk_accuracy", "topk_confidences",
    "workdir_ensembles",
]

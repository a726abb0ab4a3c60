"""[TT] Tolerant teachers: a patriarch trained with the top-K score difference loss, then
generations with the lambda mix.

References:
    [TT] Yang et al., "Knowledge Distillation in Generations: More Tolerant Teachers Educate
        Better Students", 2018, Eqns 1-3, Table 2 and Figure 2 (LSR / CP patriarchs).
"""

from __future__ import annotations

from jaxkd.plans import born_again
from jaxkd.plans.phase import Phase, make_phase


def tolerant_teacher_plan(config) -> list[Phase]:
    """[TT] D(u, lambda): a patriarch trained with the TSD loss, then M generations.

    u = 1 is a CE patriarch (so D(1.0, 0.5) is born-again training with lambda = 0.5).
    `config.tolerant_teacher.patriarch_loss` swaps the patriarch for a baseline of [TT]
    Table 2 / Figure 2 (u and k are then unused): 'label_smoothing' (LSR: CE with
    eps = `config.tolerant_teacher.label_smoothing`), 'confidence_penalty' (CP:
    CE - beta * H, beta = `config.tolerant_teacher.beta`) or 'cross_entropy'.
    """
    tt = config.tolerant_teacher
    patriarchs = {
        "tolerant_teacher": ("tolerant_teacher", lambda: {"u": tt.u, "k": tt.k}),
        "cross_entropy": ("cross_entropy", dict),
        "label_smoothing": ("cross_entropy", lambda: {"label_smoothing": tt.label_smoothing}),
        "confidence_penalty": ("confidence_penalty", lambda: {"beta": tt.beta}),
    }
    kind = tt.patriarch_loss
    if kind not in patriarchs:
        raise ValueError(f"config.tolerant_teacher.patriarch_loss must be one of "
                         f"{list(patriarchs)}, got {kind!r}")
    if kind == "tolerant_teacher":
        if isinstance(tt.u, bool) or not isinstance(tt.u, (int, float)) or not 0 < tt.u <= 1:
            raise ValueError(f"config.tolerant_teacher.u must be in (0, 1], got {tt.u!r}")
        kind = "cross_entropy" if tt.u >= 1.0 else kind
    loss, params = patriarchs[kind]
    patriarch = make_phase(config, "gen0", "patriarch", loss=loss, loss_params=params(),
                       loss_source="config.tolerant_teacher")
    return born_again.generations(config, patriarch, "born_again", {"label_weight": tt.label_weight},
                        "config.tolerant_teacher")

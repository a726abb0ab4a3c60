"""[BAN] Born-again networks: generation 0, then M generations each taught by the last.

References:
    [BAN] Furlanello et al., "Born-Again Neural Networks", ICML 2018, Sections 3.1-3.2
        (BAN, BAN+L, CWTM, DKPP), Tables 3 and 5 (cross-architecture generation 0).
"""

from __future__ import annotations

from typing import Any, Callable

from jaxkd.plans.phase import Phase, TeacherRef, make_phase


_BAN_VARIANTS: dict[str, Callable[[Any], tuple[str, dict]]] = {
    "ban": lambda c: ("born_again", {"label_weight": 0.0}),
    "ban_l": lambda c: ("ban_l", {}),
    "cwtm": lambda c: ("cwtm", {}),
    "dkpp": lambda c: ("dkpp", {}),
    "lambda": lambda c: ("born_again", {"label_weight": c.born_again.label_weight}),
}


def generations(config, first: Phase, loss: str, params: dict,
                 source: str) -> list[Phase]:
    """Generations 1..M: fresh init, teacher = the previous generation's final state."""
    plan, previous = [first], first.name
    for m in range(1, config.generations + 1):
        plan.append(make_phase(config, f"gen{m}", "generation", loss=loss,
                           loss_params=params, teacher=TeacherRef(phases=(previous,)),
                           loss_source=source))
        previous = plan[-1].name
    return plan


def born_again_plan(config) -> list[Phase]:
    """[BAN]: generation 0 with CE, then M born-again generations (variant by name).

    `config.teacher.model` (if set) makes generation 0 another architecture: DenseNet
    teacher -> ResNet students and back ([BAN] Tables 3 and 5).
    """
    variant = config.born_again.variant
    if variant not in _BAN_VARIANTS:
        raise ValueError(f"config.born_again.variant must be one of {sorted(_BAN_VARIANTS)}, "
                         f"got {variant!r}")
    weight = config.born_again.label_weight
    if variant != "lambda" and weight != 0:
        raise ValueError(f"config.born_again.label_weight={weight!r} is read only by "
                         f"config.born_again.variant='lambda' (variant {variant!r} ignores "
                         f"it); set the variant to 'lambda' or leave the weight at 0")
    loss, params = _BAN_VARIANTS[variant](config)
    gen0 = make_phase(config, "gen0", "teacher", model=config.teacher.model or config.model,
                  overrides=(config.teacher.model_overrides if config.teacher.model
                             else config.model_overrides))
    return generations(config, gen0, loss, params, "config.born_again")

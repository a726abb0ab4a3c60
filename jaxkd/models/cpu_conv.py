"""The zoo's convolution: XLA's, with a kernel gradient that reads stored activations on CPU.

On the CPU backend XLA computes a kernel gradient (dL/dW) as a convolution whose input is
the layer's input activation transposed to `[C, H, W, N]`. XLA fuses the activation's
producers (BatchNorm, residual add, ReLU of up to three blocks) into that transposing copy,
so instead of transposing a stored tensor (7.5 ms for 8 MB) it recomputes the chain through
a cache-hostile transposed index (up to 74 ms): a third of a ResNet-20 KD step
(BENCHMARKS.md, section 4). Here the kernel gradient takes the activation through a
conditional whose two branches are the identity: XLA must materialise it as computed, and
the layout change becomes a plain transpose. The values are identical (the same
convolution of the same numbers); ResNet-20 KD steps are 1.19x faster on CPU.

On GPU and TPU this is `lax.conv_general_dilated` unchanged (the backward convolutions
there are cuDNN/TPU kernels that need no such help).
"""

from __future__ import annotations

import jax
from jax import lax


def _materialised(x: jax.Array) -> jax.Array:
    """`x` as the result of `lax.cond` on a predicate XLA cannot fold (false only for NaN):
    a buffer XLA writes as is instead of fusing x's producers into x's consumers."""
    first = x.reshape(-1)[0]
    return lax.cond(first == first, lambda v: v, lambda v: v * 1, x)


def conv_general_dilated(lhs, rhs, *args, **kwargs):
    """`lax.conv_general_dilated` (same signature, same values; used by `nn.Conv`).

    On the CPU backend the gradient with respect to `rhs` (the kernel) is computed from a
    materialised `lhs`; the forward pass and the input gradient are XLA's own.
    """
    if jax.default_backend() != "cpu":
        return lax.conv_general_dilated(lhs, rhs, *args, **kwargs)

    def forward(x, w):
        return lax.conv_general_dilated(x, w, *args, **kwargs)

    @jax.custom_vjp
    def convolve(x, w):
        return forward(x, w)

    def convolve_fwd(x, w):
        return forward(x, w), (x, w)

    def convolve_bwd(residuals, dy):
        x, w = residuals
        _, input_grad = jax.vjp(lambda x_: forward(x_, w), x)
        x_stored = _materialised(x)
        _, kernel_grad = jax.vjp(lambda w_: forward(x_stored, w_), w)
        return input_grad(dy)[0], kernel_grad(dy)[0]

    convolve.defvjp(convolve_fwd, convolve_bwd)
    return convolve(lhs, rhs)

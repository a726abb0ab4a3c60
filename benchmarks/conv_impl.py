"""Experimental convolution implementations for the CPU backend (issue 8), outside jaxkd.

Each implementation has the signature of `jax.lax.conv_general_dilated`, so it can be handed
to Flax as `nn.Conv(..., conv_general_dilated=fn)`: the parameters (`kernel`, HWIO) and the
model's outputs are the same as with XLA's native convolution, only the program differs.

- `xla`: jaxkd as shipped (`jaxkd.models.cpu_conv`: XLA's convolution; on CPU the kernel
  gradient reads a materialised input).
- `plain`: `lax.conv_general_dilated` alone (jaxkd before `cpu_conv`).
- `im2col`: pad, the `kh*kw` strided slices concatenated on the channel axis (patches
  `[B, H', W', kh*kw*C]`, ordered like an HWIO kernel), then one matmul with the kernel
  reshaped to `[kh*kw*C, O]`. Its backward pass is a matmul and a sum of padded slices.
- `patches`: `lax.conv_general_dilated_patches` (XLA builds the patches with a one-hot
  convolution), then the same matmul with the kernel reordered to `(C, kh, kw)`.
- `taps`: no patch buffer: the sum over the `kh*kw` taps of `slice @ kernel[i, j]`.
- `nchw`: the same convolution expressed in NCHW/OIHW dimension numbers (transposes in
  and out); XLA's layout assignment picks the physical layout.
- `xla_bwd_im2col`: XLA's convolution forward and input gradient, the kernel gradient as the
  im2col matmul `patches^T @ dy` (a `jax.custom_vjp`).

- `barrier` / `xla_bwd_fenced`: `lax.optimization_barrier` on the convolution input, or only
  in front of the kernel gradient (attempts at what `cpu_conv` does; layout assignment
  moves the transposed layout through the barrier, so they do not help).

`use(impl)` is a context manager that makes the jaxkd model zoo build its convolutions with
`impl` while programs are traced: it swaps `jaxkd.models.common.conv_general_dilated`.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterator

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")


def _is_plain_nhwc(lhs, rhs, dimension_numbers, lhs_dilation, rhs_dilation,
                   feature_group_count, batch_group_count) -> bool:
    if lhs.ndim != 4 or feature_group_count != 1 or batch_group_count != 1:
        return False
    if any(d != 1 for d in (lhs_dilation or (1, 1))) or \
            any(d != 1 for d in (rhs_dilation or (1, 1))):
        return False
    want = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    got = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers or _NHWC)
    return want == got


def _explicit_padding(padding, lhs_shape, rhs_shape, strides):
    if isinstance(padding, str):
        return tuple(lax.padtype_to_pads(lhs_shape[1:3], rhs_shape[:2], strides, padding))
    return tuple(tuple(p) for p in padding)


def _patch_slices(x, kh, kw, strides, pads):
    """The kh*kw strided windows of the padded NHWC input, each [B, H', W', C]."""
    (pt, pb), (pl, pr) = pads
    sh, sw = strides
    x = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    b, h, w, c = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    return [lax.slice(x, (0, i, j, 0), (b, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, c),
                      (1, sh, sw, 1)) for i in range(kh) for j in range(kw)]


def _dot_last(x, w, precision, preferred_element_type):
    return lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())), precision=precision,
                           preferred_element_type=preferred_element_type)


def _wrap(kernel_fn: Callable) -> Callable:
    """Gives `kernel_fn(x, w, strides, pads, precision, pet)` conv_general_dilated's
    signature, falling back to XLA's convolution where it does not apply."""

    @functools.wraps(kernel_fn)
    def conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
             dimension_numbers=None, feature_group_count=1, batch_group_count=1,
             precision=None, preferred_element_type=None):
        if not _is_plain_nhwc(lhs, rhs, dimension_numbers, lhs_dilation, rhs_dilation,
                              feature_group_count, batch_group_count):
            return lax.conv_general_dilated(
                lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                dimension_numbers, feature_group_count, batch_group_count, precision,
                preferred_element_type)
        strides = tuple(window_strides)
        pads = _explicit_padding(padding, lhs.shape, rhs.shape, strides)
        return kernel_fn(lhs, rhs, strides, pads, precision, preferred_element_type)

    return conv


@_wrap
def im2col(x, w, strides, pads, precision, pet):
    kh, kw, c, o = w.shape
    if (kh, kw) == (1, 1) and pads == ((0, 0), (0, 0)):
        cols = x[:, ::strides[0], ::strides[1], :]
    else:
        cols = jnp.concatenate(_patch_slices(x, kh, kw, strides, pads), axis=-1)
    return _dot_last(cols, w.reshape(kh * kw * c, o), precision, pet)


@_wrap
def patches(x, w, strides, pads, precision, pet):
    kh, kw, c, o = w.shape
    cols = lax.conv_general_dilated_patches(x, (kh, kw), strides, pads,
                                            dimension_numbers=_NHWC, precision=precision)
    # Patch features are ordered (C, kh, kw).
    return _dot_last(cols, w.transpose(2, 0, 1, 3).reshape(c * kh * kw, o), precision, pet)


@_wrap
def taps(x, w, strides, pads, precision, pet):
    kh, kw, _, _ = w.shape
    windows = _patch_slices(x, kh, kw, strides, pads)
    out = None
    for index, window in enumerate(windows):
        term = _dot_last(window, w[index // kw, index % kw], precision, pet)
        out = term if out is None else out + term
    return out


@_wrap
def nchw(x, w, strides, pads, precision, pet):
    y = lax.conv_general_dilated(x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1), strides,
                                 pads, dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                 precision=precision, preferred_element_type=pet)
    return y.transpose(0, 2, 3, 1)


def _xla_conv(x, w, strides, pads):
    return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_NHWC)


def _with_kernel_grad(kernel_grad: Callable) -> Callable:
    """XLA's convolution forward and input gradient, the kernel gradient by
    `kernel_grad(x, w, dy, strides, pads)` (a `jax.custom_vjp`)."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
    def conv(x, w, strides, pads):
        return _xla_conv(x, w, strides, pads)

    def fwd(x, w, strides, pads):
        return _xla_conv(x, w, strides, pads), (x, w)

    def bwd(strides, pads, res, dy):
        x, w = res
        _, dx_fn = jax.vjp(lambda x_: _xla_conv(x_, w, strides, pads), x)
        return dx_fn(dy)[0], kernel_grad(x, w, dy, strides, pads)

    conv.defvjp(fwd, bwd)
    return conv


def _im2col_dw(x, w, dy, strides, pads):
    kh, kw, c, o = w.shape
    cols = jnp.concatenate(_patch_slices(x, kh, kw, strides, pads), axis=-1)
    dw = jnp.einsum("bhwk,bhwo->ko", cols, dy.astype(cols.dtype))
    return dw.reshape(kh, kw, c, o).astype(w.dtype)


def _fenced_dw(x, w, dy, strides, pads):
    # The fence: the layout change XLA makes for the kernel gradient reads x as computed,
    # it cannot pull x's producers (BatchNorm, ReLU, residual adds) into that copy.
    x_fenced, dy_fenced = lax.optimization_barrier((x, dy))
    _, dw_fn = jax.vjp(lambda w_: _xla_conv(x_fenced, w_, strides, pads), w)
    return dw_fn(dy_fenced)[0]


_conv_im2col_dw = _with_kernel_grad(_im2col_dw)
_conv_fenced_dw = _with_kernel_grad(_fenced_dw)


@_wrap
def xla_bwd_fenced(x, w, strides, pads, precision, pet):
    del precision, pet
    return _conv_fenced_dw(x, w, strides, pads)


@_wrap
def xla_bwd_im2col(x, w, strides, pads, precision, pet):
    del precision, pet
    return _conv_im2col_dw(x, w, strides, pads)


def barrier(lhs, rhs, *args, **kwargs):
    """XLA's convolution of an input fenced by `lax.optimization_barrier`: XLA may not fuse
    the input's producers (BatchNorm, ReLU, residual adds) into the layout change the
    kernel gradient needs, so the transposed copy reads one materialised tensor instead of
    recomputing (and re-reading) the chain through a transposed index."""
    return lax.conv_general_dilated(lax.optimization_barrier(lhs), rhs, *args, **kwargs)


def xla(lhs, rhs, *args, **kwargs):
    """jaxkd's convolution as shipped (`jaxkd.models.cpu_conv`), for the registry."""
    from jaxkd.models import cpu_conv

    return cpu_conv.conv_general_dilated(lhs, rhs, *args, **kwargs)


def plain(lhs, rhs, *args, **kwargs):
    """XLA's convolution alone (what jaxkd used before `cpu_conv`): the baseline that
    `cpu_conv` improves on."""
    return lax.conv_general_dilated(lhs, rhs, *args, **kwargs)


IMPLS: dict[str, Callable] = {"xla": xla, "im2col": im2col, "patches": patches,
                              "taps": taps, "nchw": nchw, "xla_bwd_im2col": xla_bwd_im2col,
                              "barrier": barrier, "xla_bwd_fenced": xla_bwd_fenced,
                              "plain": plain}


@contextlib.contextmanager
def use(name: str) -> Iterator[None]:
    """While active, jaxkd models trace their convolutions with `IMPLS[name]`.

    Only tracing matters: compile (or first-call) the step inside the block. 'xla' is
    jaxkd as shipped (`jaxkd.models.cpu_conv`); 'lax' is XLA's convolution without it.
    """
    if name in ("", "xla"):
        yield
        return
    from jaxkd.models import common

    original = common.conv_general_dilated
    common.conv_general_dilated = IMPLS[name]
    try:
        yield
    finally:
        common.conv_general_dilated = original

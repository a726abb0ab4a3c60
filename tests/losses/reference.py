"""Shared inputs of the loss tests and numpy references (float64) of the formulas."""
import functools

import jax
import numpy as np

LOGITS = np.array([[1.0, 2.0, 3.0, 0.5], [0.0, -1.0, 4.0, 2.0], [0.3, 0.2, 0.1, 0.0]],
                  np.float32)
TEACHER = np.array([[2.0, 0.0, 1.0, -1.0], [1.0, 3.0, 0.0, 0.5], [-2.0, 0.0, 5.0, 1.0]],
                   np.float32)
LABELS = np.array([2, 3, 0], np.int32)


def np_log_softmax(x):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def np_softmax(x):
    return np.exp(np_log_softmax(x))


def np_ce(x, y):
    return -np_log_softmax(x)[np.arange(len(y)), y]


def np_kl(t, s, tt=1.0, ts=1.0):
    log_q, log_p = np_log_softmax(np.asarray(t) / tt), np_log_softmax(np.asarray(s) / ts)
    return (np.exp(log_q) * (log_q - log_p)).sum(-1)


def jitted(fn, **kwargs):
    return jax.jit(functools.partial(fn, **kwargs))

"""jaxkd CIFAR ResNet weights in the PyTorch reference network of `benchmarks.torch_reference`.

The parity study (`experiments/parity`) distils one teacher in both frameworks: jaxkd's
trained teacher is ported here, and the port is checked by comparing the two networks'
logits on the same images (`check_port`, tests/test_parity.py: equal to 1e-4).

Name map (Flax -> PyTorch): `Conv_0`/`BatchNorm_0` -> `conv`/`bn`; `BasicBlock_i` ->
`layers.i` with `Conv_0, BatchNorm_0, Conv_1, BatchNorm_1` -> `conv1, bn1, conv2, bn2`;
`head` -> `head`. Kernels HWIO -> OIHW, Dense (in, out) -> (out, in); BatchNorm scale, bias,
mean, var -> weight, bias, running_mean, running_var.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

_BLOCK = {"Conv_0": "conv1", "BatchNorm_0": "bn1", "Conv_1": "conv2", "BatchNorm_1": "bn2"}
_TOP = {"Conv_0": "conv", "BatchNorm_0": "bn", "head": "head"}


def _torch_name(path: tuple[str, ...]) -> str:
    if path[0].startswith("BasicBlock_"):
        return f"layers.{int(path[0].split('_')[1])}.{_BLOCK[path[1]]}"
    return _TOP[path[0]]


def torch_state_dict(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The PyTorch state dict (numpy arrays) of a jaxkd `resnet<6n+2>`'s variables."""
    out: dict[str, np.ndarray] = {}

    def walk(tree, path, collection):
        for key, value in tree.items():
            if isinstance(value, Mapping):
                walk(value, path + (key,), collection)
            else:
                _put(out, _torch_name(path), key, np.asarray(value), collection)

    walk(variables["params"], (), "params")
    walk(variables["batch_stats"], (), "batch_stats")
    return out


def _put(out: dict, name: str, leaf: str, value: np.ndarray, collection: str) -> None:
    if leaf == "kernel" and value.ndim == 4:
        out[f"{name}.weight"] = value.transpose(3, 2, 0, 1)
    elif leaf == "kernel":
        out[f"{name}.weight"] = value.T
    elif collection == "batch_stats":
        out[f"{name}.running_{leaf}"] = value
    else:
        out[f"{name}.{'weight' if leaf == 'scale' else 'bias'}"] = value


def torch_model(name: str, variables: Mapping[str, Any], num_classes: int):
    """The PyTorch reference `name` holding jaxkd `variables` (in eval mode)."""
    import torch

    from benchmarks.torch_reference import build_torch_model

    net = build_torch_model(name, num_classes)
    state = {k: torch.from_numpy(np.ascontiguousarray(v))
             for k, v in torch_state_dict(variables).items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"port of {name}: missing {missing}, unexpected {unexpected}")
    return net.eval()


def check_port(model, variables, net, images: np.ndarray) -> float:
    """Largest |logit difference| of jaxkd `model` and ported `net` on NHWC `images`
    (normalised float32), both in inference mode."""
    import torch

    jax_logits = np.asarray(model.apply(variables, images, train=False))
    with torch.no_grad():
        torch_logits = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    return float(np.max(np.abs(jax_logits - torch_logits)))

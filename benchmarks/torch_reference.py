"""The same CIFAR ResNet KD training step in PyTorch, timed interleaved with jaxkd's.

Same architecture as `jaxkd.models.get_model('resnet20')` (He et al. 2016 CIFAR ResNet,
option-A zero-padded identity shortcuts, BatchNorm momentum 0.1 / eps 1e-5, He fan-out
init), same batch (float32 NCHW / NHWC random images, int32 labels), same loss (CE +
T^2 KL(teacher_T || student_T), T = 4, teacher of the same architecture in eval mode
without gradients), same optimiser (SGD, momentum 0.9, Nesterov, weight decay 1e-4 added
to the gradient). PyTorch variants: eager NCHW, eager channels-last, and `torch.compile`
(inductor, channels-last) where it works on this host.

    python -m benchmarks.torch_reference --batch_size=128 --rounds=6

prints per-variant images/s (median over interleaved rounds) and the ratio
jaxkd / PyTorch images/s for every PyTorch variant. Needs `pip install torch` (the
`bench` extra); exits with a clear message when torch is missing.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from absl import flags

from benchmarks import common

TORCH_MODES = ("eager", "channels_last", "compile")


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def build_torch_model(name: str, num_classes: int):
    """`resnet<6n+2>` (CIFAR ResNet, option A, as jaxkd) or torchvision's `resnet50`."""
    if name.startswith("resnet") and (int(name[6:]) - 2) % 6 == 0 and name != "resnet50":
        return _build_torch_resnet(int(name[6:]), num_classes)
    if name == "resnet50":
        import torchvision  # only for the ImageNet comparison of the GPU suite

        return torchvision.models.resnet50(num_classes=num_classes)
    raise ValueError(f"no PyTorch reference for model {name!r}")


def _build_torch_resnet(depth: int, num_classes: int):
    import torch
    from torch import nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            s = x
            if self.stride != 1 or self.extra:      # option A: subsample + zero channels
                s = x[:, :, ::self.stride, ::self.stride]
                s = F.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
            return F.relu(y + s)

    class CifarResNet(nn.Module):
        def __init__(self):
            super().__init__()
            n = (depth - 2) // 6
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            layers, cin = [], 16
            for stage, width in enumerate((16, 32, 64)):
                for i in range(n):
                    layers.append(Block(cin, width, 2 if stage > 0 and i == 0 else 1))
                    cin = width
            self.layers = nn.Sequential(*layers)
            self.head = nn.Linear(64, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

        def forward(self, x):
            x = self.layers(F.relu(self.bn(self.conv(x))))
            return self.head(torch.mean(x, dim=(2, 3)))

    return CifarResNet()


class TorchKDStep:
    """One PyTorch KD (or plain CE) training step on a fixed batch."""

    def __init__(self, *, mode: str = "channels_last", model: str = "resnet20",
                 batch_size: int = 128, num_classes: int = 10, kd: bool = True,
                 temperature: float = 4.0, seed: int = 0, image_size: int = 32,
                 device: str = "cpu", amp: str = ""):
        import torch
        import torch.nn.functional as F

        if mode not in TORCH_MODES:
            raise ValueError(f"mode must be one of {TORCH_MODES}, got {mode!r}")
        torch.manual_seed(seed)
        self.name, self.batch_size, self.mode = f"torch_{mode}", batch_size, mode
        self.device = torch.device(device)
        fmt = torch.contiguous_format if mode == "eager" else torch.channels_last

        def build(train: bool):
            net = build_torch_model(model, num_classes).to(self.device, memory_format=fmt)
            return net.train() if train else net.eval()

        self.student = build(True)
        self.teacher = None
        if kd:
            self.teacher = build(False)
            for p in self.teacher.parameters():
                p.requires_grad_(False)
        gen = torch.Generator().manual_seed(seed)
        self.images = torch.randn(batch_size, 3, image_size, image_size, generator=gen
                                  ).to(self.device).contiguous(memory_format=fmt)
        self.labels = torch.randint(0, num_classes, (batch_size,), generator=gen
                                    ).to(self.device)
        amp_dtype = {"": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[amp]
        self.opt = torch.optim.SGD(self.student.parameters(), lr=0.1, momentum=0.9,
                                   nesterov=True, weight_decay=1e-4)
        t2 = temperature ** 2
        student, teacher = self.student, self.teacher

        def loss_fn(images, labels):
            with torch.autocast(self.device.type, dtype=amp_dtype,
                                enabled=amp_dtype is not None):
                logits = student(images).float()
                t_logits = None
                if teacher is not None:
                    with torch.no_grad():
                        t_logits = teacher(images).float()
            loss = F.cross_entropy(logits, labels)
            if t_logits is not None:
                log_q = F.log_softmax(t_logits / temperature, dim=-1)
                log_p = F.log_softmax(logits / temperature, dim=-1)
                kl = F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)
                loss = loss + t2 * kl
            return loss, logits

        self.loss_fn = torch.compile(loss_fn) if mode == "compile" else loss_fn
        self.compile_s = 0.0
        if mode == "compile":
            start = time.perf_counter()
            self()
            self.compile_s = time.perf_counter() - start

    def __call__(self):
        loss, logits = self.loss_fn(self.images, self.labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.last_top1 = (logits.argmax(-1) == self.labels).float().mean()
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize()
        return None


def make_torch_steps(modes, **kwargs) -> tuple[dict[str, TorchKDStep], dict[str, str]]:
    """Builds the PyTorch variants that work here; returns (runners, failures)."""
    runners, failed = {}, {}
    for mode in modes:
        try:
            runners[f"torch_{mode}"] = TorchKDStep(mode=mode, **kwargs)
        except Exception as err:  # noqa: BLE001 - torch.compile fails in many host-specific ways
            failed[f"torch_{mode}"] = f"{type(err).__name__}: {str(err)[:300]}"
    return runners, failed


def compare(jax_runners: dict, torch_runners: dict, *, rounds: int, warmup: int,
            batch_size: int, reference: str = "jaxkd") -> dict:
    """Interleaves every runner; returns images/s per runner and jaxkd/torch ratios."""
    runners = {**jax_runners, **torch_runners}
    times = common.interleaved(runners, rounds=rounds, warmup=warmup)
    out: dict[str, Any] = {"variants": {n: common.summarize(t, batch_size)
                                        for n, t in times.items()}, "ratios": {}}
    for j in jax_runners:
        for t in torch_runners:
            r = common.ratio(times[t], times[j])   # time_torch / time_jax = ips_jax / ips_torch
            out["ratios"][f"{j}/{t}"] = {"images_per_s_ratio": r["ratio_of_medians"],
                                         "median_of_round_ratios": r["median_of_ratios"]}
    return out


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("model", "resnet20", "resnet<6n+2> CIFAR ResNet", flag_values=fv)
    flags.DEFINE_integer("batch_size", 32, "batch size", flag_values=fv)
    flags.DEFINE_integer("rounds", 5, "timed interleaved rounds", flag_values=fv)
    flags.DEFINE_integer("warmup", 2, "untimed rounds first", flag_values=fv)
    flags.DEFINE_string("modes", "eager,channels_last,compile", "comma-separated PyTorch "
                        f"variants from {TORCH_MODES}", flag_values=fv)
    flags.DEFINE_bool("plain", False, "CE step without teacher instead of KD",
                      flag_values=fv)
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "jaxkd activations; "
                      "bfloat16 also turns on PyTorch AMP (autocast)", flag_values=fv)
    flags.DEFINE_string("device", "cpu", "PyTorch device: cpu or cuda", flag_values=fv)
    flags.DEFINE_integer("num_classes", 10, "classes of the model's head", flag_values=fv)
    flags.DEFINE_integer("image_size", 32, "image side in pixels", flag_values=fv)
    flags.DEFINE_integer("threads", 0, "PyTorch threads (0: its default)", flag_values=fv)
    flags.DEFINE_string("conv", "xla", "jaxkd convolution implementation(s), "
                        "comma-separated (benchmarks.conv_impl.IMPLS)", flag_values=fv)
    flags.DEFINE_string("num_devices", "1", "jaxkd mesh sizes, comma-separated; on a CPU "
                        "the host is split into that many devices (what `python -m "
                        "jaxkd.main` does by default, one per core), e.g. 1,2",
                        flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    meshes = [int(n) for n in args.num_devices.split(",")]
    cpu_split = max(meshes) if args.device == "cpu" and max(meshes) > 1 else 0
    common.apply_xla_flags(args.xla_flags, device_count=cpu_split)
    if not torch_available():
        print("torch is not installed: pip install torch==2.13.0 (CPU wheel), or the "
              "'bench' extra", file=sys.stderr)
        sys.exit(2)
    import torch

    from benchmarks import harness

    kd = not args.plain
    jax_runners = {}
    for conv in args.conv.split(","):
        for n in meshes:
            r = harness.build_step(model=args.model, kd=kd, batch_size=args.batch_size,
                                   conv=conv, num_devices=n, dtype=args.dtype,
                                   name=f"jaxkd_{conv}" + (f"_{n}dev" if n > 1 else ""),
                                   num_classes=args.num_classes, image_size=args.image_size)
            jax_runners[r.name] = r
    modes = [m for m in args.modes.split(",") if m]
    if args.threads:
        torch.set_num_threads(args.threads)
    amp = "bfloat16" if args.dtype == "bfloat16" else ""
    torch_runners, failed = make_torch_steps(
        modes, model=args.model, batch_size=args.batch_size, kd=kd, device=args.device,
        amp=amp, num_classes=args.num_classes, image_size=args.image_size)
    result = compare(jax_runners, torch_runners, rounds=args.rounds, warmup=args.warmup,
                     batch_size=args.batch_size)
    record = {"benchmark": "torch_reference", "model": args.model, "kd": kd,
              "batch_size": args.batch_size, "dtype": args.dtype, "device": args.device,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""), "rounds": args.rounds, **result,
              "torch_failed": failed, "torch": torch.__version__,
              "torch_threads": torch.get_num_threads(),
              "torch_compile_s": {n: r.compile_s for n, r in torch_runners.items()},
              "jax_compile_s": {n: r.compile_s for n, r in jax_runners.items()},
              "env": common.env_info()}
    _print_table(record)
    return common.emit(record, args.json)


def _print_table(record: dict) -> None:
    print(f"{'variant':28s} {'images/s':>10s} {'median ms':>10s}")
    for name, s in record["variants"].items():
        print(f"{name:28s} {s['items_per_s']:10.1f} {s['median_s'] * 1e3:10.1f}")
    for name, r in record["ratios"].items():
        print(f"{name:44s} jaxkd/torch images/s = {r['images_per_s_ratio']:.2f} "
              f"(median of rounds {r['median_of_round_ratios']:.2f})")
    for name, why in record["torch_failed"].items():
        print(f"{name}: not available here ({why[:120]})")


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", "/tmp/jaxkd_bench_inductor")
    main()

"""Where the time of one jaxkd train step goes, per kind of XLA operation (CPU backend).

Runs the step under `jax.profiler`, reads the trace with jaxlib's own `ProfileData` (no
TensorBoard needed), maps every executed thunk back to its HLO instruction in the compiled
program and sums the time per category:

- phase: `teacher_fwd` (teacher, inference), `student_fwd` (under `jvp`), `student_bwd`
  (under `transpose(jvp)`) and `other` (loss, optimiser, metrics);
- kind: `conv:eigen` (XLA's native convolution thunk), `conv:ynn` (a convolution handed to
  YNNPACK), `dot:ynn`, `reduce` / `reduce:ynn` (BatchNorm statistics), `transpose/copy`
  (layout changes), `elementwise` (other loop fusions), ...; for convolutions the window is
  appended; a convolution whose window is as large as the activations computes a kernel
  gradient and is reported as `conv_dW` (phase `student_bwd`); `transpose/copy` counts
  every fusion whose result is a layout change, with the elementwise work fused into it.

    python -m benchmarks.profile_step --model=resnet20 --batch_size=64 --conv=xla

With `--torch`, also prints PyTorch's profiler table of the same step (channels-last).
"""

from __future__ import annotations

import collections
import glob
import re
import tempfile

from absl import flags

from benchmarks import common

_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\S+)\s+([\w\-]+)\(")
_COMP = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")


def parse_hlo(text: str) -> tuple[dict, dict]:
    """(instructions: name -> (opcode, line, computation), computations: name -> lines)."""
    instrs, comps, current = {}, {}, None
    for line in text.splitlines():
        if not line.startswith((" ", "\t")) and line.rstrip().endswith("{"):
            m = _COMP.match(line)
            current = m.group(1) if m else None
            if current:
                comps[current] = []
            continue
        if line.strip() == "}":
            current = None
            continue
        m = _INSTR.match(line)
        if m and current is not None:
            instrs[m.group(1)] = (m.group(3), line, current)
            comps[current].append(line)
    return instrs, comps


def _op_name(line: str, body: list[str]) -> str:
    m = re.search(r'op_name="([^"]*)"', line)
    if m:
        return m.group(1)
    for inner in reversed(body):          # a fusion without metadata: its root's
        m = re.search(r'op_name="([^"]*)"', inner)
        if m:
            return m.group(1)
    return ""


def classify(name: str, instrs: dict, comps: dict) -> tuple[str, str]:
    """(phase, kind) of an executed thunk named after its HLO instruction."""
    if name not in instrs:
        return "other", "runtime:" + name.split(".")[0]
    opcode, line, _ = instrs[name]
    called = re.search(r"calls=%?([\w.\-]+)", line)
    body = comps.get(called.group(1), []) if called else []
    op_name = _op_name(line, body)
    if "transpose(" in op_name:
        phase = "student_bwd"
    elif "jvp(" in op_name:
        phase = "student_fwd"
    elif op_name.count("/") >= 2:      # inside a model's modules, outside jvp: the teacher
        phase = "teacher_fwd"
    else:
        phase = "other"
    text = " ".join(body) if body else line
    ynn = "__ynn_fusion" in line or "__xnn_fusion" in line or "onednn" in line.lower()
    root = next((b for b in body if b.lstrip().startswith("ROOT")), "")
    root_op = _INSTR.match(root).group(3) if _INSTR.match(root) else ""
    if opcode == "convolution" or " convolution(" in text:
        window = re.search(r"window=\{size=([0-9x]+)", text)
        size = window.group(1) if window else "?"
        lib = "ynn" if ynn else "eigen" if opcode == "convolution" else "fused"
        # A window as large as the activations is the kernel gradient of a 3x3 conv.
        if window and max(int(v) for v in size.split("x")) > 7:
            kind, phase = f"conv_dW:{lib}[{size}]", "student_bwd"
        else:
            kind = f"conv:{lib}[{size}]"
    elif " dot(" in text or opcode == "dot":
        kind = "dot:ynn" if ynn else "dot"
    elif " reduce(" in text or " reduce-window(" in text or opcode == "reduce":
        kind = "reduce:ynn" if ynn else "reduce"
    elif ynn:
        kind = "ynn:other"
    elif opcode in ("copy", "transpose") or root_op in ("copy", "transpose"):
        kind = "transpose/copy"
    elif opcode == "fusion":
        kind = "elementwise"
    else:
        kind = opcode
    return phase, kind


def profile_jax(runner, steps: int = 3) -> dict:
    """Per-(phase, kind) milliseconds per step of a harness.StepRunner."""
    import jax
    from jax._src.lib import _profile_data

    common.block(runner())
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp)
        for _ in range(steps):
            common.block(runner())
        jax.profiler.stop_trace()
        path = glob.glob(f"{tmp}/**/*.xplane.pb", recursive=True)[-1]
        data = _profile_data.ProfileData.from_file(path)
        instrs, comps = parse_hlo(runner.compiled.as_text())
        totals, counts = collections.Counter(), collections.Counter()
        for plane in data.planes:
            for line in plane.lines:
                if "XLAPjRtCpuClient" not in line.name and "XLAEigen" not in line.name:
                    continue
                for e in line.events:
                    if e.name.startswith(("ThreadpoolListener", "end:", "ThunkExecutor")):
                        continue
                    key = classify(e.name, instrs, comps)
                    totals[key] += e.duration_ns
                    counts[key] += 1
    rows = [{"phase": p, "kind": k, "ms_per_step": v / steps / 1e6,
             "thunks_per_step": counts[(p, k)] / steps}
            for (p, k), v in totals.most_common()]
    total = sum(r["ms_per_step"] for r in rows)
    for r in rows:
        r["share"] = r["ms_per_step"] / total if total else 0.0
    return {"rows": rows, "total_op_ms_per_step": total}


def group(rows: list[dict], by: str) -> dict:
    """Sums ms per step by 'phase' or by the kind's family (before ':' and '[')."""
    out = collections.Counter()
    for r in rows:
        key = r[by] if by == "phase" else re.split(r"[\[]", r["kind"])[0]
        out[key] += r["ms_per_step"]
    return dict(out.most_common())


def profile_torch(step, steps: int = 3, top: int = 25) -> list[dict]:
    """PyTorch profiler: self CPU time per aten op, ms per step (top entries)."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    rows = [{"op": e.key, "self_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
             "calls_per_step": e.count / steps} for e in prof.key_averages()]
    rows.sort(key=lambda r: -r["self_ms_per_step"])
    return rows[:top]


def main(argv=None) -> dict:
    fv = common.flag_values()
    flags.DEFINE_string("model", "resnet20", "model (jaxkd.models name)", flag_values=fv)
    flags.DEFINE_integer("batch_size", 32, "batch size", flag_values=fv)
    flags.DEFINE_bool("plain", False, "plain CE step instead of KD", flag_values=fv)
    flags.DEFINE_string("conv", "xla", "benchmarks.conv_impl implementation",
                        flag_values=fv)
    flags.DEFINE_integer("steps", 3, "profiled steps", flag_values=fv)
    flags.DEFINE_bool("torch", False, "also profile the PyTorch step", flag_values=fv)
    args = common.parse(fv, argv, __doc__)
    common.apply_xla_flags(args.xla_flags)
    from benchmarks import harness

    runner = harness.build_step(model=args.model, kd=not args.plain,
                                batch_size=args.batch_size, conv=args.conv)
    result = profile_jax(runner, args.steps)
    record = {"benchmark": "profile_step", "model": args.model, "kd": not args.plain,
              "batch_size": args.batch_size, "conv": args.conv, **result,
              "by_phase": group(result["rows"], "phase"),
              "by_kind": group(result["rows"], "kind"), "env": common.env_info()}
    print(f"{'phase':12s} {'kind':28s} {'ms/step':>9s} {'share':>6s} {'thunks':>7s}")
    for r in result["rows"][:30]:
        print(f"{r['phase']:12s} {r['kind']:28s} {r['ms_per_step']:9.1f} "
              f"{100 * r['share']:5.1f}% {r['thunks_per_step']:7.0f}")
    print("by phase:", {k: round(v, 1) for k, v in record["by_phase"].items()})
    print("by kind: ", {k: round(v, 1) for k, v in record["by_kind"].items()})
    if args.torch:
        from benchmarks.torch_reference import TorchKDStep

        rows = profile_torch(TorchKDStep(mode="channels_last", model=args.model,
                                         batch_size=args.batch_size, kd=not args.plain),
                             args.steps)
        record["torch_rows"] = rows
        for r in rows[:20]:
            print(f"torch {r['op']:45s} {r['self_ms_per_step']:9.1f} ms/step")
    return common.emit(record, args.json)


if __name__ == "__main__":
    main()

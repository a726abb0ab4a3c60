"""Every benchmark script runs at its smallest size and writes a sane JSON record.

These tests keep `benchmarks/` from rotting; they check structure and invariants, never
speed (the machine is shared). Tiny sizes: ResNet-8, batch 8, 2 timed rounds.
"""

import importlib
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:       # `benchmarks` is a top-level package beside `jaxkd`
    sys.path.insert(0, str(REPO))

SCRIPTS = ["step_throughput", "torch_reference", "roofline", "whole_run", "data_pipeline",
           "scaling", "cpu_gap", "profile_step", "digests", "compiled_chunks", "packing",
           "run"]
TINY = ["--model=resnet8", "--batch_size=8"]


def _main(name, argv, tmp_path):
    out = tmp_path / f"{name}.json"
    module = importlib.import_module(f"benchmarks.{name}")
    record = module.main([*argv, f"--json={out}"])
    assert json.loads(out.read_text())["benchmark"] == record["benchmark"]
    return record


@pytest.mark.parametrize("name", SCRIPTS)
def test_help(name):
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "--json" in proc.stdout


def test_flags_are_absl_flags_with_the_shared_ones_and_hidden_worker_modes(capsys):
    """`benchmarks.common`: the shared --json / --xla_flags, a fresh registry per call (a
    second `main` in one process starts from the defaults), worker flags out of --help,
    a bad flag exits 2 as argparse did."""
    from absl import flags

    from benchmarks import common

    def parse(argv):
        fv = common.flag_values()
        flags.DEFINE_integer("rounds", 5, "timed rounds", flag_values=fv)
        flags.DEFINE_bool("plain", False, "plain step", flag_values=fv)
        flags.DEFINE_bool("worker", False, "worker mode", flag_values=fv,
                          module_name=common.HIDDEN)
        return common.parse(fv, argv, "the doc")

    args = parse(["--rounds=2", "--plain", "--worker", "--json=/tmp/x.json"])
    assert (args.rounds, args.plain, args.worker, args.json, args.xla_flags) == \
        (2, True, True, "/tmp/x.json", "")
    assert (parse([]).rounds, parse([]).plain) == (5, False)
    with pytest.raises(SystemExit) as exit_help:
        parse(["--help"])
    text = capsys.readouterr().out
    assert exit_help.value.code == 0 and text.startswith("the doc")
    assert "--rounds" in text and "--json" in text and "--xla_flags" in text
    assert "worker" not in text
    for bad in (["--rounds=x"], ["--nosuch=1"], ["positional"]):
        with pytest.raises(SystemExit) as exit_bad:
            parse(bad)
        assert exit_bad.value.code == 2, bad


def test_step_throughput(tmp_path):
    r = _main("step_throughput", [*TINY, "--rounds=2", "--warmup=1"], tmp_path)
    for step in ("plain", "kd"):
        s = r["steps"][step]
        assert s["n"] == 2 and s["items_per_s"] > 0 and s["compile_s"] > 0
        assert s["program_memory"]["program_peak_estimate_bytes"] > 0
        assert s["cost"]["flops"] > 0
    # The KD step runs the teacher forward on top: more FLOPs than the plain step.
    assert r["steps"]["kd"]["cost"]["flops"] > r["steps"]["plain"]["cost"]["flops"]
    assert r["kd_over_plain_time"] > 0


def test_torch_reference(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed (the 'test' extra does not "
                        "install it; `pip install torch==2.13.0` or the 'bench' extra)")
    r = _main("torch_reference", [*TINY, "--rounds=2", "--warmup=1",
                                  "--modes=eager,channels_last"], tmp_path)
    assert set(r["variants"]) == {"jaxkd_xla", "torch_eager", "torch_channels_last"}
    assert r["ratios"]["jaxkd_xla/torch_channels_last"]["images_per_s_ratio"] > 0


def test_torch_model_matches_jaxkd_architecture():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    from benchmarks.torch_reference import build_torch_model
    from jaxkd import models

    for name in ("resnet8", "resnet20"):
        net = build_torch_model(name, 10)
        model = models.get_model(name, num_classes=10)
        variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
        n_jax = sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))
        assert sum(p.numel() for p in net.parameters()) == n_jax
        assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_roofline(tmp_path):
    r = _main("roofline", [*TINY, "--rounds=2", "--matmul_n=128", "--stream_mib=8"],
              tmp_path)
    assert r["flops_per_step"] > 0 and r["bytes_per_step"] > 0
    assert r["peak_matmul_gflops"] > 0 and r["stream_gbps"] > 0
    assert 0 < r["fraction_of_bound"]
    assert r["bound"] in ("compute", "memory")


def test_data_pipeline(tmp_path):
    r = _main("data_pipeline", [*TINY, "--rounds=2", "--warmup=1"], tmp_path)
    assert set(r["variants"]) == {"preplaced", "pipeline", "batch_only"}
    assert r["steps_per_epoch"] == 2500 // 8


def test_compiled_chunks(tmp_path):
    r = _main("compiled_chunks", [*TINY, "--steps=2", "--rounds=2", "--warmup=1", "--plain"],
              tmp_path)
    assert set(r["variants"]) == {"per_step", "chunk"} and r["steps"] == 2
    assert r["speedup"] > 0


def test_packing(tmp_path):
    r = _main("packing", [*TINY, "--seeds=1,2", "--rounds=1", "--warmup=1"], tmp_path)
    assert set(r["seeds"]) == {"1", "2"}
    for n, x in r["seeds"].items():
        # the conftest's 4 fake devices: gcd(n, 4) groups of runs
        assert x["mesh"] == {"runs": int(n), "data": 4 // int(n)}
        assert x["packed"]["items_per_s"] > 0 and x["speedup"] > 0


def test_whole_run(tmp_path):
    r = _main("whole_run", ["--model=resnet8", "--epochs=4", "--cycles=4",
                            "--generations=1", "--train_per_class=2", "--batch_size=10",
                            "--in_process"],
              tmp_path)
    assert set(r["ratio_to_baseline"]) == {"sd", "ban"}
    phases = {m: w[0]["phases"] for m, w in r["workers"].items()}
    assert phases == {"baseline": 1, "sd": 4, "ban": 2}


def test_scaling(tmp_path):
    # conftest gives this process 4 fake CPU devices; the script's default is one fresh
    # process per device count (XLA_FLAGS), which the smoke suite exercises.
    r = _main("scaling", ["--devices=1,2,4", "--model=resnet8", "--batch_size=8",
                          "--steps=2", "--in_process"], tmp_path)
    assert [row["devices"] for row in r["rows"]] == [1, 2, 4]
    # Same global batch, same initial state: the sharded step computes the same update.
    assert r["max_loss_abs_diff"] < 1e-3
    assert r["max_param_rel_diff"] < 1e-4


def test_digests(tmp_path):
    r = _main("digests", ["--model=resnet8", "--rounds=2", "--warmup=1"], tmp_path)
    assert set(r["variants"]) == {"save", "save_digests", "restore", "restore_verified",
                                  "manifest", "verify"}
    assert r["save_ratio"] > 0 and r["restore_ratio"] > 0 and r["checkpoint_files"] > 3


def test_profile_step(tmp_path):
    r = _main("profile_step", [*TINY, "--steps=1"], tmp_path)
    assert r["total_op_ms_per_step"] > 0
    assert any(k.startswith("conv") for k in r["by_kind"])
    assert {"student_fwd", "student_bwd", "teacher_fwd"} <= set(r["by_phase"])


@pytest.mark.parametrize("impl", ["im2col", "patches", "taps", "nchw", "xla_bwd_im2col",
                                  "barrier", "xla_bwd_fenced"])
def test_conv_impls_match_xla(impl):
    from jax import lax

    from benchmarks import conv_impl

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 8, 8, 3)), jnp.float32)
    dn = ("NHWC", "HWIO", "NHWC")
    for k, s in ((3, 1), (3, 2), (1, 2)):
        w = jnp.asarray(rng.normal(size=(k, k, 3, 4)), jnp.float32)
        pad = ((k // 2, k // 2),) * 2

        def loss(x, w, conv):
            return jnp.sum(jnp.sin(conv(x, w, (s, s), pad, dimension_numbers=dn)))

        want = jax.value_and_grad(loss, (0, 1))(x, w, lax.conv_general_dilated)
        got = jax.jit(jax.value_and_grad(loss, (0, 1)), static_argnums=2)(
            x, w, conv_impl.IMPLS[impl])
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_conv_impl_use_keeps_the_model():
    from benchmarks import conv_impl
    from jaxkd import models

    model = models.get_model("resnet8", num_classes=10)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 32, 3)), jnp.float32)
    variables = model.init(jax.random.key(0), x)
    want = model.apply(variables, x)
    with conv_impl.use("im2col"):
        got = jax.jit(model.apply)(variables, x)
        same_tree = jax.tree_util.tree_structure(model.init(jax.random.key(0), x))
    assert same_tree == jax.tree_util.tree_structure(variables)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_cpu_gap_worker(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed (no PyTorch yardstick)")
    r = _main("cpu_gap", ["--worker", "--convs=xla,im2col", *TINY, "--rounds=1",
                          "--warmup=1"], tmp_path)
    assert set(r["vs_jaxkd_xla"]) == {"jaxkd_xla", "jaxkd_im2col"}
    assert "jaxkd_im2col/torch_channels_last" in r["ratios"]


def test_suite_budget_skips_the_entries_that_would_start_after_it(tmp_path):
    from benchmarks import run
    entries = [e[0] for e in run.lease_suite()]
    assert entries[:2] == ["packing_resnet20", "packing_resnet20_kd"]   # what sizes Table 3
    results = run.run_suite("lease", only=entries[:2], json_dir=tmp_path, timeout=60,
                            budget=1e-9)
    assert [r["skipped"] for r in results.values()] == \
        ["the 0 s budget of --budget_s was spent"] * 2
    assert list(tmp_path.iterdir()) == []

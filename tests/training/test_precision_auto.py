"""`training.precision: auto`: bfloat16 where the hardware has it and the model is large enough
to gain, float32 elsewhere; the choice and its reason are shown and recorded, the run's
config.yaml holds the policy chosen (so a resume anywhere trains in it), the output layer stays
float32, and a mixed_bfloat16 run killed with SIGKILL resumes bit for bit in both loops."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import yaml

from tests.kit import Child, InProcess, assert_identical, child_env, summary
from tests.training.test_recipes import BASE, KILL_AT, _merge
from tftrain.training.performance import BF16_MIN_STEP_MACS, bf16_hardware, resolve_precision

CIFAR_STEP = 4_548_608 * 64  # the CIFAR CNN's forward multiply-adds at batch 64
MNIST_STEP = 101_632 * 32


def test_auto_is_bfloat16_only_with_units_and_a_step_large_enough():
    cpu = bf16_hardware({"avx2", "avx512_bf16", "amx_bf16"})
    assert cpu == "CPU avx512_bf16 + amx_bf16"
    assert resolve_precision("auto", CIFAR_STEP, cpu) == ("mixed_bfloat16", "auto: CPU avx512_bf16 + amx_bf16, "
                                                                            "291M multiply-adds a step")
    policy, why = resolve_precision("auto", MNIST_STEP, cpu)
    assert policy == "float32" and "too small to gain (3.3M multiply-adds a step < 50M)" in why
    assert resolve_precision("auto", None, cpu)[0] == "float32"  # a model tftrain cannot cost
    assert resolve_precision("auto", BF16_MIN_STEP_MACS, cpu)[0] == "mixed_bfloat16"
    policy, why = resolve_precision("auto", CIFAR_STEP, None)
    assert policy == "float32" and "no bfloat16 units" in why
    assert resolve_precision("mixed_float16", 10, None) == ("mixed_float16", "training.precision")
    assert resolve_precision("float32", MNIST_STEP, cpu) == ("float32", "training.precision")
    assert resolve_precision("float32", CIFAR_STEP, cpu) == (  # a hint where auto would be faster
        "float32", "training.precision; auto would pick mixed_bfloat16 here (CPU avx512_bf16 + amx_bf16)")


def test_cpu_flags_without_bfloat16_units_mean_none():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the GPUs decide where there are any")
    assert bf16_hardware({"avx2", "avx512f"}) is None
    assert bf16_hardware({"amx_bf16"}) == "CPU amx_bf16"


def test_auto_is_shown_and_recorded_as_the_chosen_policy(cli, write_config, tmp_path):
    raw = _merge(BASE, {"training": {"precision": "auto", "epochs": 1}})
    result = cli("run", write_config(raw), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    info = json.loads((run / "summary.json").read_text())
    chosen = info["data"]["precision"]
    assert info["precision"] == chosen["policy"] == "float32"  # a tiny model gains nothing on any hardware
    assert chosen["reason"].startswith("auto: ")
    assert f"precision: float32 ({chosen['reason']})" in result.output
    # config.yaml keeps what the user wrote; what auto chose is summary.json's, which a resume reuses
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["precision"] == "auto"
    assert info["resolved"]["training.precision"] == "float32"


def test_a_bfloat16_model_keeps_a_float32_output_and_resumes_exactly_after_sigkill(tmp_path):
    """Both loops, mixed_bfloat16 (what auto picks for large models on bf16 hardware): killed
    with SIGKILL after step KILL_AT in a separate process, resumed, bit-identical to an
    uninterrupted run; the saved model computes in bfloat16 with a float32 output layer."""
    import keras

    from tftrain.spec.loading import validate
    from tftrain.training.session import run_training

    env = child_env(tmp_path)
    configs, children = {}, {}
    for loop in ("fit", "custom"):
        configs[loop] = validate(_merge(BASE, {"training": {"loop": loop, "precision": "mixed_bfloat16"}}))
        path = tmp_path / f"{loop}.yaml"
        path.write_text(yaml.safe_dump(configs[loop].model_dump(mode="json")))
        children[loop] = Child(["run", path.name, "--runs-dir", f"killed_{loop}"], tmp_path, env, paced=True,
                               at=KILL_AT, signal=signal.SIGKILL)
    from rich.console import Console

    for loop, child in children.items():
        base = run_training(configs[loop], tmp_path / f"base_{loop}", console=Console(quiet=True)).path
        assert child.wait() == -signal.SIGKILL, child
        killed = child.run_dir(tmp_path)
        resumed = InProcess(["run", "--resume", killed], tmp_path)
        assert resumed.exit_code == 0, resumed
        assert summary(killed)["precision"] == "mixed_bfloat16"
        assert_identical(killed, base)
        model = keras.saving.load_model(base / "model.keras", compile=False)
        assert model.layers[-2].dtype_policy.compute_dtype == "bfloat16"
        assert model.layers[-1].dtype_policy.compute_dtype == "float32"

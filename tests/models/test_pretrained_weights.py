"""`weights: imagenet` on an application backbone, offline: one line naming the file and the
folder to put it in, and nothing else (no "Downloading ..." line, no Keras warning)."""

from __future__ import annotations


def test_offline_imagenet_weights_say_one_line_and_nothing_else(cli, write_config, tmp_path, tiny_images,
                                                                 monkeypatch, recwarn):
    monkeypatch.setenv("TFTRAIN_OFFLINE", "1")
    config = {"data": {"dataset": "npz", "path": str(tiny_images), "batch_size": 8},
              "model": {"type": "application", "name": "mobilenet_v3_small", "weights": "imagenet",
                        "trainable": False},
              "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True}}
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    folder = tmp_path / "keras_home" / "models"
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: model.weights: imagenet weights of mobilenet_v3_small: weights_mobilenet_v3_small"
                               f"_224_1.0_float_no_top_v2.h5 is not in {folder}; download https://")
    assert "Downloading" not in result.output
    assert not [w for w in recwarn if "input_shape" in str(w.message)]  # 32x32 data: Keras's 224x224 warning is dropped
    assert not (tmp_path / "runs").exists()

"""In-graph epochs: training data in memory is gathered by index inside the compiled step.

The promise: batch s is the same tensor on both paths (tf.data and in-graph), so a run trains
bit for bit the same either way, in both loops, with class weights, augmentation and several
steps per compiled call; the plan says which path it took and why (data lines, summary.json).
Exact resume after SIGKILL on the in-graph path (the default for data in memory) is covered by
tests/resume/test_resume.py and tests/training/test_recipes.py, whose configs all take it.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.kit import assert_identical, summary
from tests.training.test_recipes import _merge, _quiet, feature_config, images  # noqa: F401 (images: a fixture)


def _config(**patch):
    from tftrain.spec.loading import validate

    raw = {"name": "graph", "seed": 3, "deterministic": True,
           "data": {"dataset": "synthetic_binary", "options": {"num_examples": 40}, "batch_size": 6},
           "model": {"type": "dense", "hidden": [4], "output_activation": "sigmoid"},
           "loss": "binary_crossentropy", "optimizer": "sgd", "training": {"epochs": 3}}
    return validate(_merge(raw, patch))


@pytest.mark.parametrize("training", [
    {"epochs": 3},  # a short last batch each epoch, a new permutation each epoch
    {"steps": 20, "log_every": 5},  # one endless walk through the epochs
    {"steps": 20, "log_every": 5, "sampling": "with_replacement"},
    {"epochs": 2, "class_weight": "balanced"},  # (x, y, sample_weight)
])
def test_in_graph_batch_s_is_the_pipelines_batch_s(training):
    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import build_pipelines, split_for_training
    from tftrain.data.pipeline.class_weights import class_weights
    from tftrain.data.pipeline.transforms import training_transform

    config = _config(training=training, data={"validation": 0.2})
    data = load_data(config, config.seed)
    weights = None
    if config.training.class_weight is not None:
        weights = class_weights(config, data, split_for_training(data, config, config.seed)[0].y)
    transform = training_transform(config, [], weights, config.seed)
    pipelines = build_pipelines(data, config, config.seed, transform, in_graph=True)
    start = 4  # a resumed stream starts part-way, in both paths
    for step, batch in enumerate(pipelines.train(start), start):
        gathered = pipelines.in_graph.batch(np.int64(step))
        assert len(gathered) == len(batch) == (3 if weights else 2)
        for a, b in zip(gathered, batch, strict=True):
            assert np.array_equal(a.numpy(), b.numpy()), step
    assert step == pipelines.total_steps - 1


def test_an_epochs_batches_cover_its_examples_once_with_one_permutation_op_a_step():
    """Epochs mode: an epoch's batches hold every training example once, each epoch in a new
    order; a batch lies in one epoch, so the compiled step draws its indices with one
    RandomIndexShuffle (the steps-mode walk, whose batches may straddle two epochs, needs two)."""
    import tensorflow as tf

    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import build_pipelines

    config = _config(data={"validation": 0.2})
    pipelines = build_pipelines(load_data(config, config.seed), config, config.seed, None, in_graph=True)
    indices, spe, n = pipelines.in_graph.indices, pipelines.steps_per_epoch, pipelines.train_examples
    orders = [np.concatenate([indices(tf.constant(e * spe + b, tf.int64)).numpy() for b in range(spe)])
              for e in range(3)]
    for order in orders:
        assert sorted(order) == list(range(n))
    assert len({tuple(order) for order in orders}) == 3
    graph = tf.function(indices).get_concrete_function(tf.TensorSpec([], tf.int64)).graph
    assert [op.type for op in graph.get_operations()].count("RandomIndexShuffle") == 1


@pytest.mark.parametrize("loop", ["fit", "custom"])
@pytest.mark.parametrize("feature", ["class_weights", "augmentation_pipeline"])
def test_in_graph_and_tf_data_runs_are_bit_identical(tmp_path, images, loop, feature):  # noqa: F811
    """Dropout, Adam, three steps per compiled call, a validation split, and class weights or
    pipeline augmentation (random flips, shifts, contrast drawn per step): the same history,
    weights and final training state down to the last bit."""
    from tftrain.training.session import run_training

    runs = {}
    for in_graph in (True, False):
        config = feature_config(feature, loop, images)
        config = config.model_copy(update={"training": config.training.model_copy(update={"in_graph": in_graph})})
        runs[in_graph] = run_training(config, tmp_path / str(in_graph), console=_quiet()).path
        assert summary(runs[in_graph])["data"]["input"]["in_graph"] is in_graph
    assert_identical(runs[True], runs[False])


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_in_graph_steps_compile_with_xla_as_the_tf_data_steps_do(tmp_path, loop):
    """jit_compile: true compiles each step with XLA on its gathered batch (the gather stays
    outside: XLA has no kernel for the epoch order), bit for bit as on the tf.data path."""
    from tftrain.training.session import run_training

    runs = {}
    for in_graph in (True, False):
        config = _config(deterministic=False,  # Keras turns XLA off under op determinism
                         training={"loop": loop, "epochs": 2, "jit_compile": True, "steps_per_execution": 3,
                                   "in_graph": in_graph})
        runs[in_graph] = run_training(config, tmp_path / str(in_graph), console=_quiet()).path
        assert summary(runs[in_graph])["jit_compile"] is True
    assert_identical(runs[True], runs[False])


def test_the_data_lines_say_which_path_and_why(cli, write_config, tmp_path):
    raw = _config().model_dump(mode="json")
    result = cli("run", write_config(raw), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert "input: in-graph (batches gathered inside the compiled step): the training split is in memory" \
        in result.output
    raw["training"]["in_graph"] = False
    result = cli("run", write_config(raw), "--runs-dir", tmp_path / "runs")
    assert "input: tf.data pipeline: training.in_graph: false" in result.output


def test_strategies_fall_back_to_tf_data_with_the_reason():
    from tftrain.training.performance import resolve_in_graph

    assert resolve_in_graph("auto", streamed=False, distribute="none") == (True, "the training split is in memory")
    assert resolve_in_graph("auto", streamed=True, distribute="none")[0] is False
    used, why = resolve_in_graph("auto", streamed=False, distribute="mirrored")
    assert not used and "training.distribute: mirrored" in why


def test_in_graph_true_under_a_strategy_is_refused_in_one_line(cli, write_config):
    raw = _config().model_dump(mode="json")
    raw["training"].update(in_graph=True, distribute="mirrored")
    result = cli("validate", write_config(raw))
    assert result.exit_code == 2
    assert "training.in_graph: true cannot be combined with distribute: mirrored" in result.output

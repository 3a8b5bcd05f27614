"""Adam and AdamW through TensorFlow's fused kernel: the same update as Keras's ops (to float32
rounding), used in tftrain's runs, and nothing of it in what a saved model records. Exact resume
through it is the kill -9 tests' business: TINY trains with Adam in both loops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tftrain.models.components import build_optimizer
from tftrain.models.fused_optimizers import fuse_update
from tftrain.spec.schema import OptimizerConfig


def _trained(optimizer, steps=5):
    """Weights and slots after `steps` updates of an embedding + dense model on fixed batches (the
    embedding's gradient is sparse: tf.IndexedSlices)."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,), dtype="int32")
    hidden = keras.layers.Flatten()(keras.layers.Embedding(20, 6)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(hidden)))
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 20, (16 * steps, 4)), rng.integers(0, 3, 16 * steps)
    for i in range(steps):
        model.train_on_batch(x[16 * i:16 * (i + 1)], y[16 * i:16 * (i + 1)])
    return [v.numpy() for v in model.weights] + [v.numpy() for v in optimizer.variables]


@pytest.mark.parametrize("make", [
    lambda: keras.optimizers.Adam(0.01),
    lambda: keras.optimizers.AdamW(0.01, weight_decay=0.05, clipnorm=1.0),
    lambda: keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.02, 3, 0.5)),
], ids=["adam", "adamw-clipnorm", "adam-schedule"])
def test_the_fused_kernel_trains_as_kerass_own_ops_do(make):
    fused, plain = _trained(fuse_update(make())), _trained(make())
    assert len(fused) == len(plain)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_the_fused_kernel_is_what_the_step_runs_and_what_tftrain_builds():
    optimizer = build_optimizer(OptimizerConfig(name="adam", learning_rate=0.01))
    assert "_backend_update_step" in vars(optimizer)  # the instance's own kernel calls, not the class's ops
    weight, bias = keras.Variable(np.ones((3, 2), "float32")), keras.Variable(np.zeros(2, "float32"))
    optimizer.build([weight, bias])
    apply = tf.function(lambda g, h: optimizer.apply([g, h], [weight, bias]))
    graph = apply.get_concrete_function(tf.TensorSpec((3, 2)), tf.TensorSpec((2,))).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("ResourceApplyAdam") == 2 and "AssignSubVariableOp" not in ops
    assert ops.count("Pow") == 2  # b1^t and b2^t once per step, not once per variable
    apply(tf.fill((3, 2), 0.5), tf.fill((2,), -0.5))
    # Adam's first step moves every weight by the learning rate against the gradient's sign.
    np.testing.assert_allclose(weight.numpy(), np.full((3, 2), 0.99), rtol=1e-6)
    np.testing.assert_allclose(bias.numpy(), np.full(2, 0.01), rtol=1e-5)


@pytest.mark.parametrize("make", [lambda: keras.optimizers.Adam(amsgrad=True), lambda: keras.optimizers.SGD(),
                                  lambda: type("MyAdam", (keras.optimizers.Adam,), {})()],
                         ids=["amsgrad", "sgd", "subclass"])
def test_an_update_the_kernel_does_not_do_stays_kerass(make):
    assert "_backend_update_step" not in vars(fuse_update(make()))


def test_a_sparse_gradient_takes_kerass_ops_exactly():
    # After one step each variable's update depends on its own gradient only: the embedding's
    # (sparse) takes Keras's ops, bit for bit; the dense layers' the kernel, to rounding.
    fused, plain = _trained(fuse_update(keras.optimizers.Adam(0.01)), 1), _trained(keras.optimizers.Adam(0.01), 1)
    np.testing.assert_array_equal(fused[0], plain[0])
    for a, b in zip(fused[1:], plain[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_saved_model_records_plain_keras_adam(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(fuse_update(keras.optimizers.Adam(0.01)), "mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded.optimizer) is keras.optimizers.Adam and "_backend_update_step" not in vars(loaded.optimizer)
    assert loaded.optimizer.get_config() == keras.optimizers.Adam(0.01).get_config() | {
        "name": loaded.optimizer.name}
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

"""Baseline 2: the CIFAR-10 CNN trained by a hand-written GradientTape loop.

The model is the one from https://www.tensorflow.org/tutorials/images/cnn (Conv 32-64-64,
Dense 64, 10 logits); the loop is the one from
https://www.tensorflow.org/tutorials/quickstart/advanced: a @tf.function train_step with
tf.GradientTape and Mean/SparseCategoricalAccuracy metrics, here called on NumPy slices of the
arrays (divided by 255.0, as float32) in a Python loop, reshuffled every epoch. Adam, batch 64,
as configs/cifar10_cnn.yaml.

The only additions are measurement: the same ThroughputMeter tftrain uses and a JSON result.

    python bench/baselines/cifar10_cnn.py --data images.npz --epochs 2 --result out.json
"""

import argparse
import json

import numpy as np
import tensorflow as tf

from tftrain.training.callbacks.throughput import ThroughputMeter  # measurement only

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help=".npz with x_train, y_train, x_test, y_test")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--result", default=None, help="write measurements to this JSON file")
args = parser.parse_args()
BATCH_SIZE = 64

tf.keras.utils.set_random_seed(args.seed)

with np.load(args.data) as f:
    x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
x_train, x_test = (x_train / 255.0).astype("float32"), (x_test / 255.0).astype("float32")

model = tf.keras.models.Sequential([
    tf.keras.layers.Input((32, 32, 3)),
    tf.keras.layers.Conv2D(32, (3, 3), activation="relu"),
    tf.keras.layers.MaxPooling2D((2, 2)),
    tf.keras.layers.Conv2D(64, (3, 3), activation="relu"),
    tf.keras.layers.MaxPooling2D((2, 2)),
    tf.keras.layers.Conv2D(64, (3, 3), activation="relu"),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(64, activation="relu"),
    tf.keras.layers.Dense(10),
])
loss_object = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
optimizer = tf.keras.optimizers.Adam()

train_loss = tf.keras.metrics.Mean(name="train_loss")
train_accuracy = tf.keras.metrics.SparseCategoricalAccuracy(name="train_accuracy")
test_loss = tf.keras.metrics.Mean(name="test_loss")
test_accuracy = tf.keras.metrics.SparseCategoricalAccuracy(name="test_accuracy")


@tf.function
def train_step(images, labels):
    with tf.GradientTape() as tape:
        predictions = model(images, training=True)
        loss = loss_object(labels, predictions)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    train_loss(loss)
    train_accuracy(labels, predictions)


@tf.function
def test_step(images, labels):
    predictions = model(images, training=False)
    test_loss(loss_object(labels, predictions))
    test_accuracy(labels, predictions)


meter = ThroughputMeter(BATCH_SIZE, len(x_train))
rng = np.random.default_rng(args.seed)
for epoch in range(args.epochs):
    meter.epoch_begin()
    train_loss.reset_state()
    train_accuracy.reset_state()
    test_loss.reset_state()
    test_accuracy.reset_state()

    order = rng.permutation(len(x_train))
    x_epoch, y_epoch = x_train[order], y_train[order]
    for step, start in enumerate(range(0, len(x_train), BATCH_SIZE)):
        train_step(x_epoch[start:start + BATCH_SIZE], y_epoch[start:start + BATCH_SIZE])
        meter.steps_done(step)

    for start in range(0, len(x_test), BATCH_SIZE):
        test_step(x_test[start:start + BATCH_SIZE], y_test[start:start + BATCH_SIZE])

    print(f"Epoch {epoch + 1}, Loss: {train_loss.result():.4f}, "
          f"Accuracy: {train_accuracy.result():.4f}, Test Loss: {test_loss.result():.4f}, "
          f"Test Accuracy: {test_accuracy.result():.4f}")

if args.result:
    with open(args.result, "w") as f:
        json.dump({**meter.result(),
                   "loss": float(train_loss.result()), "accuracy": float(train_accuracy.result()),
                   "test_loss": float(test_loss.result()), "test_accuracy": float(test_accuracy.result())}, f)

"""Baseline 1: the TensorFlow beginner quickstart, written the way the tutorial writes it.

https://www.tensorflow.org/tutorials/quickstart/beginner: NumPy arrays divided by 255.0,
Flatten -> Dense(128, relu) -> Dense(10, softmax), compile(optimizer="sgd", ...), then
fit(x, y, epochs, batch_size=32) and evaluate on the test set. The model, optimizer, batch size
and epochs match configs/mnist_dense.yaml.

The only additions are measurement: the same ThroughputCallback tftrain uses (training
examples/second, first compiled call reported apart) and a JSON result file.

    python bench/baselines/mnist_dense.py --data mnist.npz --epochs 3 --result out.json
"""

import argparse
import json

import numpy as np
import tensorflow as tf

from tftrain.training.callbacks.throughput import ThroughputCallback  # measurement only

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="a Keras-format mnist.npz")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--limit", type=int, default=None, help="use the first N training examples")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--result", default=None, help="write measurements to this JSON file")
args = parser.parse_args()

tf.keras.utils.set_random_seed(args.seed)

with np.load(args.data) as f:
    x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
if args.limit:
    x_train, y_train = x_train[:args.limit], y_train[:args.limit]
x_train, x_test = x_train / 255.0, x_test / 255.0

model = tf.keras.models.Sequential([
    tf.keras.layers.Input((28, 28)),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

meter = ThroughputCallback(batch_size=32, examples_per_epoch=len(x_train))
history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=32,
                    callbacks=[meter])
if args.result:
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=2)
    with open(args.result, "w") as f:
        json.dump({**meter.result(),
                   "loss": history.history["loss"][-1], "accuracy": history.history["accuracy"][-1],
                   "test_loss": test_loss, "test_accuracy": test_accuracy}, f)

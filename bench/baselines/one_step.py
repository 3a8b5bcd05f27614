"""Baseline 3 (fixed overhead): a hand-written script that trains the MNIST dense model for one
step of 32 examples and saves it, as `tftrain run` does with training.steps=1.

It loads mnist.npz, divides by 255.0, builds and compiles the quickstart model, runs
fit on one batch and saves model.keras. compare.py times the whole process, start-up included,
against `tftrain run configs/mnist_dense.yaml --set training.steps=1 --set data.validation=none`.

    python bench/baselines/one_step.py --data mnist.npz --save /tmp/model.keras
"""

import argparse

import numpy as np
import tensorflow as tf

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="a Keras-format mnist.npz")
parser.add_argument("--save", required=True, help="where to save the trained model (.keras)")
args = parser.parse_args()

tf.keras.utils.set_random_seed(0)

with np.load(args.data) as f:
    x_train, y_train = f["x_train"], f["y_train"]
x_train = x_train / 255.0

model = tf.keras.models.Sequential([
    tf.keras.layers.Input((28, 28)),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train[:32], y_train[:32], epochs=1, batch_size=32)
model.save(args.save)

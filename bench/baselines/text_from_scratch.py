"""Baseline: the Keras example "Text classification from scratch", as it is written.

https://keras.io/examples/nlp/text_classification_from_scratch/: text_dataset_from_directory
(batch 32), TextVectorization(max_tokens=20000, output_sequence_length=500) adapted on the
texts and mapped over the dataset, then Embedding(20000, 128) -> Dropout(0.5) -> two
Conv1D(128, 7, strides=3) -> GlobalMaxPooling1D -> Dense(128) -> Dropout(0.5) -> Dense(1,
sigmoid), adam, binary cross-entropy. Additions: tftrain's ThroughputCallback, a JSON result.

    python bench/baselines/text_from_scratch.py --data texts/ --epochs 1 --result out.json
"""

import argparse
import json

import keras
import tensorflow as tf

from tftrain.training.callbacks.throughput import ThroughputCallback  # measurement only

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--result", default=None)
args = parser.parse_args()
keras.utils.set_random_seed(args.seed)

raw_train_ds = keras.utils.text_dataset_from_directory(args.data, batch_size=32, seed=args.seed)
count = sum(int(tf.shape(y)[0]) for _, y in raw_train_ds)
vectorize_layer = keras.layers.TextVectorization(max_tokens=20000, output_mode="int", output_sequence_length=500)
vectorize_layer.adapt(raw_train_ds.map(lambda x, y: x))
train_ds = raw_train_ds.map(lambda x, y: (vectorize_layer(tf.expand_dims(x, -1)), y))
train_ds = train_ds.cache().prefetch(buffer_size=10)  # as the example does

inputs = keras.Input(shape=(None,), dtype="int64")
x = keras.layers.Embedding(20000, 128)(inputs)
x = keras.layers.Dropout(0.5)(x)
x = keras.layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
x = keras.layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
x = keras.layers.GlobalMaxPooling1D()(x)
x = keras.layers.Dense(128, activation="relu")(x)
x = keras.layers.Dropout(0.5)(x)
model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="predictions")(x))
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])

meter = ThroughputCallback(batch_size=32, examples_per_epoch=count)
history = model.fit(train_ds, epochs=args.epochs, callbacks=[meter], verbose=2)
if args.result:
    with open(args.result, "w") as f:
        json.dump({**meter.result(), "loss": history.history["loss"][-1],
                   "accuracy": history.history["accuracy"][-1]}, f)

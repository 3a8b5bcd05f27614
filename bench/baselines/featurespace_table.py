"""Baseline: the Keras example "Structured data classification with FeatureSpace", as it is written.

https://keras.io/examples/structured_data/structured_data_classification_with_feature_space/:
a CSV read into a dict dataset, `keras.utils.FeatureSpace` (integer and string categoricals
one-hot, numbers normalized, a crossed pair) adapted on the training set, the preprocessing
mapped over the tf.data pipeline (`num_parallel_calls=AUTOTUNE`), then Dense(32, relu) ->
Dropout(0.5) -> Dense(1, sigmoid) trained with adam on binary cross-entropy, batch 32.
The only additions are measurement (tftrain's ThroughputCallback) and a JSON result file.

    python bench/baselines/featurespace_table.py --data table.csv --epochs 2 --result out.json
"""

import argparse
import csv
import json

import keras
import tensorflow as tf
from keras.utils import FeatureSpace

from tftrain.training.callbacks.throughput import ThroughputCallback  # measurement only

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--result", default=None)
args = parser.parse_args()
keras.utils.set_random_seed(args.seed)

with open(args.data, newline="") as f:
    rows = list(csv.DictReader(f))
numbers = ["age", "income", "score", "hours"]
columns = {name: [float(r[name]) if name in numbers else r[name] for r in rows] for name in rows[0]}
labels = [int(v) for v in columns.pop("target")]
columns["rooms"] = [int(v) for v in columns["rooms"]]
train_ds = tf.data.Dataset.from_tensor_slices((columns, labels)).batch(32)

feature_space = FeatureSpace(
    features={"city": FeatureSpace.string_categorical(num_oov_indices=1),
              "job": FeatureSpace.string_categorical(num_oov_indices=1),
              "plan": FeatureSpace.string_categorical(num_oov_indices=1),
              "rooms": FeatureSpace.integer_categorical(num_oov_indices=1),
              **{name: FeatureSpace.float_normalized() for name in numbers}},
    crosses=[FeatureSpace.cross(feature_names=("city", "plan"), crossing_dim=32)],
    output_mode="concat",
)
feature_space.adapt(train_ds.map(lambda x, _: x))
preprocessed = train_ds.map(lambda x, y: (feature_space(x), y), num_parallel_calls=tf.data.AUTOTUNE)
preprocessed = preprocessed.prefetch(tf.data.AUTOTUNE)

encoded = keras.Input(shape=(feature_space.get_encoded_features().shape[-1],))
x = keras.layers.Dense(32, activation="relu")(encoded)
x = keras.layers.Dropout(0.5)(x)
model = keras.Model(encoded, keras.layers.Dense(1, activation="sigmoid")(x))
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])

meter = ThroughputCallback(batch_size=32, examples_per_epoch=len(labels))
history = model.fit(preprocessed, epochs=args.epochs, callbacks=[meter], verbose=2)
if args.result:
    with open(args.result, "w") as f:
        json.dump({**meter.result(), "loss": history.history["loss"][-1],
                   "accuracy": history.history["accuracy"][-1]}, f)

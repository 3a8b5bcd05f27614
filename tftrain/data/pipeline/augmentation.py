"""`data.augmentation`: Keras's image preprocessing layers on the training batches only, in the
tf.data pipeline (`data.augmentation_on: pipeline`, on the CPU in parallel with the step) or at
the start of the model (`model`, on the accelerator). Never at validation, evaluate, predict or
export: in the pipeline only training batches go through it; in the model Keras's random layers
are the identity unless called with training=True (RandomCrop then center-crops, as in Keras).

Exactness. Keras's random layers draw from a SeedGenerator, a variable that each draw advances,
so in a parallel tf.data map the draws of one batch would depend on the order in which batches
happened to run, and a resumed run could not replay them. In the pipeline every layer is given a
`StepSeeds` instead: its draws for batch `s` come from the stateless seed (run seed, s, layer,
draw), so the augmented batch is a pure function of (seed, s), like the data order
(tftrain.data.pipeline.batches), and a run resumed at step s sees exactly the batches it would have seen.
In the model the layers keep Keras's own seed generators: their state is model variables, which
the resume state checkpoints.

Speed. In the pipeline RandomFlip and RandomTranslation are subclasses of Keras's layers with the
same draws and the same output, computed more cheaply on a CPU (tftrain.data.pipeline.pipeline_layers);
in the model they are Keras's own, so a saved model holds only Keras's classes and loads in safe
mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tftrain.data.pipeline.pipeline_layers import pipeline_layer_classes
from tftrain.errors import ConfigError, DataError
from tftrain.spec import catalog

if TYPE_CHECKING:
    from tftrain.data.base import LoadedData, StreamedData
    from tftrain.spec.schema import Config

# Layers whose `value_range` says what a pixel's range is (Keras's default: [0, 255]).
_VALUE_RANGE = {"random_contrast", "random_brightness", "rand_augment", "random_erasing"}


def check_augmentation(config: Config, data: LoadedData | StreamedData) -> None:
    """Raise DataError when the configured augmentation cannot apply to this data."""
    entries, name = config.data.augmentation, config.data.dataset
    if not entries:
        return
    shape = tuple(data.input_shape)
    if len(shape) not in (2, 3):
        raise DataError(f"data.augmentation: image augmentation needs images (height, width[, channels]); the "
                        f"examples of {name} have shape {shape}" + (" (a table's rows)" if len(shape) == 1 else ""))
    for i, entry in enumerate(entries):
        (layer, params), = entry.items()
        size = (params.get("height"), params.get("width"))
        if layer == "random_crop" and all(isinstance(v, int) for v in size) and (size[0] > shape[0] or size[1] > shape[1]):
            raise DataError(f"data.augmentation.{i}.random_crop: a {size[0]}x{size[1]} crop is larger than the "
                            f"{shape[0]}x{shape[1]} images of {name} (Keras would upscale every image to it); expected "
                            f"height <= {shape[0]} and width <= {shape[1]}")
        if layer == "random_crop" and config.data.augmentation_on == "pipeline":
            size = (params.get("height"), params.get("width"))
            if size != shape[:2]:
                raise DataError(f"data.augmentation.{i}.random_crop: a {size[0]}x{size[1]} crop of the {shape[0]}x"
                                f"{shape[1]} images of {name} in the pipeline would leave validation, evaluate and "
                                "predict with images of another size; use data.augmentation_on: model (Keras then "
                                "center-crops at inference), or random_translation / random_zoom")


def layer_arguments(config: Config, data: LoadedData | StreamedData) -> list[tuple[str, dict[str, Any]]]:
    """(Keras class name, constructor arguments) of each configured layer. `value_range`, where
    the user gave none, is the data's: [0, 255] for uint8 pixels, [0, 1] for floats in [0, 1]."""
    if not config.data.augmentation:
        return []  # and no scan of the inputs (a typed table's are text)
    # Only when some layer needs it: reading the range scans the whole training split.
    unit = _unit_range(data) if any(next(iter(e)) in _VALUE_RANGE for e in config.data.augmentation) else None
    layers = []
    for i, entry in enumerate(config.data.augmentation):
        (name, params), = entry.items()
        params = dict(params)
        if name in _VALUE_RANGE and "value_range" not in params:
            if unit is None:
                raise DataError(f"data.augmentation.{i}.{name}: the {data.input_dtype} inputs of {config.data.dataset} "
                                "stream from disk, so their range is not known up front: give value_range, e.g. "
                                "[0, 1] or [0, 255]")
            params["value_range"] = [0, 1] if unit else [0, 255]
        layers.append((catalog.AUGMENTATIONS[name][0], params))
    return layers


def _unit_range(data: LoadedData | StreamedData) -> bool | None:
    """Whether the inputs are floats in [0, 1]; None where that is unknown (streamed floats)."""
    if data.input_dtype == "uint8":
        return False
    if data.streamed:
        return None
    x = data.x_train
    return bool(x.size and float(x.min()) >= 0 and float(x.max()) <= 1)


def build_layer(class_name: str, params: dict[str, Any], seed: int | None, index: int, cls=None):
    """One Keras preprocessing layer (an instance of `cls`, a subclass of it, where given); bad
    arguments are a one-line ConfigError naming it."""
    import keras

    try:
        if cls is not None:
            return cls(**params, seed=seed)
        return keras.layers.deserialize({"module": "keras.layers", "class_name": class_name,
                                         "config": {**params, "seed": seed}, "registered_name": None})
    except (TypeError, ValueError) as exc:
        name = next(k for k, (c, _) in catalog.AUGMENTATIONS.items() if c == class_name)
        raise ConfigError(f"data.augmentation.{index}.{name}: {str(exc).splitlines()[0][:300]}") from None


def _step_seeds_class():
    """`StepSeeds`, defined once Keras is imported (it subclasses keras.random.SeedGenerator)."""
    import keras
    import tensorflow as tf

    class StepSeeds(keras.random.SeedGenerator):
        """A SeedGenerator whose draws are stateless: the k-th draw of the layer `salt` while
        the pipeline traces batch `s` gets seed fold(fold((run seed, s), salt), k). The counter
        counts draws at trace time, so every batch's graph draws with the same k's."""

        def __init__(self, salt: int):
            super().__init__(seed=salt)  # its own state variable is created, and never used
            self.salt = salt
            self._batch_seed = None
            self._draws = 0

        def begin(self, batch_seed) -> None:
            """The batch being traced: its stateless seed (shape [2])."""
            self._batch_seed, self._draws = batch_seed, 0

        def next(self, ordered=True):
            self._draws += 1
            layer_seed = tf.random.experimental.stateless_fold_in(self._batch_seed, self.salt)
            return tf.random.experimental.stateless_fold_in(layer_seed, self._draws)

    return StepSeeds


class PipelineAugmentation:
    """`(x, y, step) -> (x, y)` for training batches in tf.data: a pure function of the batch
    and (seed, step). Images come out as float32 (the model rescales them as before)."""

    def __init__(self, layers: list[tuple[str, dict[str, Any]]], seed: int):
        step_seeds = _step_seeds_class()
        faster = pipeline_layer_classes()
        self.seed = seed
        self.layers = []
        for i, (class_name, params) in enumerate(layers):
            layer = build_layer(class_name, params, seed=None, index=i, cls=faster.get(class_name))
            layer.generator = step_seeds(i + 1)  # what Keras's layers draw from (DataLayer._get_seed_generator)
            self.layers.append((class_name, layer))

    def __call__(self, x, y, step):
        import tensorflow as tf

        batch_seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        grey = len(x.shape) == 3  # (batch, height, width): Keras's image layers need a channel axis
        if grey:
            x = x[..., None]
        mixing = {catalog.AUGMENTATIONS[name][0] for name in catalog.LABEL_MIXING}
        for class_name, layer in self.layers:
            layer.generator.begin(batch_seed)
            if class_name in mixing:
                mixed = layer({"images": x, "labels": tf.cast(y, tf.float32)}, training=True)
                x, y = mixed["images"], mixed["labels"]
            else:
                x = layer(x, training=True)
        return (x[..., 0] if grey else x), y


def in_model(x, layers: tuple[tuple[str, dict[str, Any]], ...], seed: int):
    """The augmentation layers at the start of a model, on the raw inputs `x` (a Keras tensor);
    layer i is seeded with seed + i (Keras's own seed generators: model variables)."""
    import keras

    grey = len(x.shape) == 3
    if grey:
        x = keras.layers.Reshape((*x.shape[1:], 1), name="augment_add_channel")(x)
    for i, (class_name, params) in enumerate(layers):
        layer = build_layer(class_name, params, seed=seed + i, index=i)
        x = layer(x)
    if grey:
        x = keras.layers.Reshape(tuple(x.shape[1:3]), name="augment_drop_channel")(x)
    return x

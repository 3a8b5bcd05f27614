"""`model.type: application`: a keras.applications backbone (MobileNet, EfficientNet, ResNet,
ConvNeXt, DenseNet, ...) with global pooling and a classification head.

    model:
      type: application
      name: mobilenet_v3_small   # any keras.applications backbone, snake_case or Keras's name
      weights: imagenet          # null (random) | imagenet (Keras's download and cache) | a weights file
      trainable: false           # true | false (train the head only) | N (the last N backbone layers too)
      pooling: avg               # avg | max over the backbone's feature map
      head: [{dropout: 0.2}]     # layers between pooling and the output layer (sequential syntax)

The model takes the data's raw pixels (0..255): it adds a channel axis and repeats grey images to
three channels, resizes them when `image_size` says so (or when they are smaller than the
backbone's minimum), and applies the backbone's own `preprocess_input` as layers, so predict and
export take the same raw inputs as training. Everything is built from Keras's own layers, so the
saved model loads in safe mode.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt, field_validator

from tftrain.errors import DataError
from tftrain.models.base import ModelSchema, ModelSpec, output_layer
from tftrain.models.layer_config import check_value, entry_parts, snake_case
from tftrain.models.sequential import check_layer_list, expand, parameters_text, unique_names
from tftrain.spec.base import show, suggest, unknown
from tftrain.spec.catalog import check_activation
from tftrain.spec.layer_bounds import check_bound

# How each family's preprocess_input maps raw pixels (keras.applications.imagenet_utils):
#   tf     x / 127.5 - 1              torch  (x / 255 - ImageNet mean) / ImageNet std
#   caffe  RGB -> BGR, minus the ImageNet mean pixel
#   inside the backbone does it itself (include_preprocessing), from 0..255
# name -> (keras.applications function, preprocessing, minimum height/width, extra options)
_MOBILENET = {"alpha": "float", "depth_multiplier": "int"}
_SIZE_FACTORS = {"alpha": 4.0}  # Keras's pretrained widths go to 1.4; 4 is already a ~16x larger backbone
_MOBILENET_V3 = {"alpha": "float", "minimalistic": "bool"}
BACKBONES: dict[str, tuple[str, str, int, dict[str, str]]] = {
    **{f"convnext_{size}": (f"ConvNeXt{size.capitalize().replace('Xlarge', 'XLarge')}", "inside", 32, {})
       for size in ("tiny", "small", "base", "large", "xlarge")},
    **{f"densenet{depth}": (f"DenseNet{depth}", "torch", 32, {}) for depth in (121, 169, 201)},
    **{f"efficientnet_b{i}": (f"EfficientNetB{i}", "inside", 32, {}) for i in range(8)},
    **{f"efficientnet_v2_{v}": (f"EfficientNetV2{v.upper()}", "inside", 32, {})
       for v in ("b0", "b1", "b2", "b3", "s", "m", "l")},
    "inception_resnet_v2": ("InceptionResNetV2", "tf", 75, {}),
    "inception_v3": ("InceptionV3", "tf", 75, {}),
    "mobilenet": ("MobileNet", "tf", 32, _MOBILENET),
    "mobilenet_v2": ("MobileNetV2", "tf", 32, {"alpha": "float"}),
    "mobilenet_v3_small": ("MobileNetV3Small", "inside", 32, _MOBILENET_V3),
    "mobilenet_v3_large": ("MobileNetV3Large", "inside", 32, _MOBILENET_V3),
    "nasnet_mobile": ("NASNetMobile", "tf", 32, {}),
    "nasnet_large": ("NASNetLarge", "tf", 32, {}),
    **{f"resnet{depth}": (f"ResNet{depth}", "caffe", 32, {}) for depth in (50, 101, 152)},
    **{f"resnet{depth}_v2": (f"ResNet{depth}V2", "tf", 32, {}) for depth in (50, 101, 152)},
    "vgg16": ("VGG16", "caffe", 32, {}),
    "vgg19": ("VGG19", "caffe", 32, {}),
    "xception": ("Xception", "tf", 71, {}),
}
# Keras's names (MobileNetV3Small) and their plain snake_case (mobile_net_v3_small) work too.
_ALIASES = {alias: name for name, (function, *_) in BACKBONES.items()
            for alias in (function, snake_case(function))}
_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)  # the `torch` mode's statistics, of 0..1 pixels
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # the `caffe` mode's mean pixel, of 0..255 BGR pixels
_FETCH_FAILED = re.compile(r"URL fetch failure on (\S+?):? ")


class ApplicationModel(ModelSchema):
    """A keras.applications backbone, global pooling, optional head layers and the output layer."""

    type: Literal["application"]
    name: str  # no sensible default: which backbone is the user's choice
    weights: str | None = "imagenet"  # Keras's default: the point of a backbone is its pretrained features
    trainable: bool | PositiveInt = True  # Keras's default: every layer trains; false trains the head only
    pooling: Literal["avg", "max"] = "avg"  # global average pooling, as Keras's transfer-learning guide
    head: list[Any] = Field(default_factory=list)  # nothing between pooling and the output: a linear probe
    output_activation: str | None = None  # logits: pair with from_logits=true, numerically stabler
    image_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = None  # null: the data's size (raised to the backbone's minimum)
    options: dict[str, Any] = Field(default_factory=dict)  # the backbone's own arguments (alpha, minimalistic, ...)

    _check_activation = field_validator("output_activation")(check_activation)

    @field_validator("name", mode="before")
    @classmethod
    def _backbone(cls, value: Any) -> Any:
        if isinstance(value, str) and value in _ALIASES:
            return _ALIASES[value]
        if not isinstance(value, str) or value not in BACKBONES:
            raise ValueError(unknown("backbone", value, BACKBONES) + " (keras.applications)")
        return value

    @field_validator("head", mode="before")
    @classmethod
    def _head(cls, value: Any) -> Any:
        return check_layer_list(value) if value != [] else value

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any], info) -> dict[str, Any]:
        name = info.data.get("name")
        if name not in BACKBONES:
            return value  # the name's error is reported instead
        allowed = BACKBONES[name][3]
        for key, given in value.items():
            if key not in allowed:
                raise ValueError(f"unknown option {show(key)} for {name}{suggest(str(key), allowed)}; "
                                 f"valid: {', '.join(allowed) or 'none'}")
            check_value(allowed[key], given, f".{key}")
            if key in _SIZE_FACTORS and not 0 < given <= _SIZE_FACTORS[key]:  # alpha: 1e6 scales every filter count
                raise ValueError(f".{key}: expected a width multiplier in (0, {_SIZE_FACTORS[key]}], got {given!r} "
                                 "(larger builds a backbone that does not fit in memory)")
            check_bound(key, given, f".{key}")
        return value

    def head_layers(self) -> list[tuple[str, dict]]:
        """(name, entry) of the head's layers, groups expanded."""
        entries = expand(self.head)
        return list(zip(unique_names(entries), entries))

    def layer_rows(self) -> list[tuple[str, str, str, str]]:
        rows = [(self.name, BACKBONES[self.name][0], f"weights={self.weights}, trainable={self.trainable}",
                 "input"), ("pool", f"global_{'average' if self.pooling == 'avg' else 'max'}_pooling2d", "",
                            self.name)]
        previous = "pool"
        for name, entry in self.head_layers():
            kind, args = entry_parts(entry)
            rows.append((name, kind, parameters_text(args), previous))
            previous = name
        rows.append(("outputs", "dense", f"activation={self.output_activation}", previous))
        return rows

    # -- checks -------------------------------------------------------------------------------
    def image_shape(self, spec: ModelSpec) -> tuple[int, int]:
        """The (height, width) the backbone sees: image_size, else the data's (at least the minimum)."""
        if self.image_size is not None:
            return tuple(self.image_size)
        minimum = BACKBONES[self.name][2]
        return max(spec.input_shape[0], minimum), max(spec.input_shape[1], minimum)

    def check(self, spec: ModelSpec) -> None:
        """Images with 1 or 3 channels, at least the backbone's minimum size, a weights file that
        exists, `trainable: N` within the backbone; then a symbolic build of the whole model."""
        shape, minimum = spec.input_shape, BACKBONES[self.name][2]
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] not in (1, 3)):
            raise DataError(f"model.type application needs images of shape (height, width[, channels]) with 1 "
                            f"or 3 channels; the examples of {spec.dataset} have shape {shape}")
        if self.image_size is not None and min(self.image_size) < minimum:
            raise DataError(f"model.image_size: {self.image_size[0]}x{self.image_size[1]} is below the "
                            f"{minimum}x{minimum} that {self.name} needs")
        if self.weights not in (None, "imagenet") and not Path(self.weights).is_file():
            raise DataError(f"model.weights: {self.weights}: no such weights file (expected null, imagenet, "
                            "or a weights file such as backbone.weights.h5)")
        from tftrain.models.keras_build import check_symbolically, keras_message, symbolic

        if isinstance(self.trainable, int) and not isinstance(self.trainable, bool):
            with symbolic():
                try:
                    count = len(self._backbone_model(self.image_shape(spec), None).layers)
                except ValueError as exc:  # the backbone's own argument checks (options)
                    raise DataError(f"model: {self.name}: {keras_message(exc)}") from None
            if self.trainable > count:
                raise DataError(f"model.trainable: {self.trainable} layers, but {self.name} has {count}")
        check_symbolically(lambda: self.build(spec, load_weights=False), spec, "model (its output layer)")

    def output_activation_name(self) -> str | None:
        return self.output_activation

    # -- building -----------------------------------------------------------------------------
    def build(self, spec: ModelSpec, load_weights: bool = True):
        """raw pixels -> in-model augmentation -> channels, size, preprocess_input -> backbone -> pooling -> head -> outputs."""
        import keras

        from tftrain.models.keras_build import call_layer, kind_of, make_layer

        inputs = x = keras.Input(shape=spec.input_shape, name="inputs")
        if spec.augmentation:  # data.augmentation_on: model, on the raw pixels
            from tftrain.data.pipeline.augmentation import in_model

            x = in_model(x, spec.augmentation, spec.seed)
        x = self._to_backbone_input(x, spec)
        backbone = self._backbone_model(self.image_shape(spec), self.weights if load_weights else None)
        frozen = self._freeze(backbone)
        # A frozen backbone runs in inference mode (batch-norm statistics kept, as Keras's
        # transfer-learning guide advises), also where only its last layers train.
        x = backbone(x, training=False) if frozen else backbone(x)
        pool = keras.layers.GlobalAveragePooling2D if self.pooling == "avg" else keras.layers.GlobalMaxPooling2D
        x = pool(name="pool")(x)
        for i, (name, entry) in enumerate(self.head_layers()):
            where = f"model.head[{i}] ({name})"
            x = call_layer(make_layer(entry, name, where), kind_of(entry), [x], where)
        return keras.Model(inputs, output_layer(x, spec, self.output_activation), name=self.name)

    def set_stage(self, model, unfrozen: bool) -> None:
        import keras

        from tftrain.models.hub_tuning import train_everything

        backbone, = (layer for layer in model.layers if isinstance(layer, keras.Model))
        if not unfrozen:
            train_everything(backbone)
            self._freeze(backbone)
            return
        # Batch normalization stays frozen, as _freeze keeps it: its statistics stay the pretrained ones.
        train_everything(backbone, keep_frozen=(keras.layers.BatchNormalization,))

    def _to_backbone_input(self, x, spec: ModelSpec):
        """Channel axis, grey -> RGB, resizing and the backbone's preprocess_input, as layers."""
        import keras

        shape = tuple(x.shape[1:])  # the data's, or what an in-model random_crop left of it
        if len(shape) == 2:
            x = keras.layers.Reshape((*shape, 1), name="add_channel")(x)
        if len(shape) == 2 or shape[-1] == 1:
            x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])
        height, width = self.image_shape(spec)
        if (height, width) != tuple(shape[:2]):
            x = keras.layers.Resizing(height, width, name="resize", dtype="float32")(x)
        return _preprocess(x, BACKBONES[self.name][1])

    def _backbone_model(self, size: tuple[int, int], weights: str | None):
        """keras.applications' model without its classifier, for images of `size`."""
        function = _functions()[BACKBONES[self.name][0]]
        with _keras_download(self.name) if weights == "imagenet" else contextlib.nullcontext(), \
                warnings.catch_warnings():
            # Keras warns that the 224x224 weights load for another input size: tftrain asks for the
            # data's size on purpose (convolutions take any size), so the warning says nothing new.
            warnings.filterwarnings("ignore", message=r"`input_shape` is undefined or non-square")
            if weights in (None, "imagenet"):
                return function(include_top=False, weights=weights, input_shape=(*size, 3), **self.options)
        try:
            return function(include_top=False, weights=weights, input_shape=(*size, 3), **self.options)
        except Exception as exc:  # noqa: BLE001 (h5py's OSError, Keras's ValueError for other layers, ...)
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise DataError(f"model.weights: {weights}: not weights of {self.name} Keras can load "
                            f"({why}); expected a {self.name} weights file (.weights.h5)") from None

    def _freeze(self, backbone) -> bool:
        """Apply `trainable`; True when the backbone (or its first layers) stays frozen."""
        if self.trainable is True:
            return False
        if self.trainable is False:
            backbone.trainable = False
            return True
        import keras

        # The backbone itself stays trainable (a frozen parent hides its layers' weights from the
        # optimizer); its layers are frozen one by one except the last N.
        for layer in backbone.layers[:-self.trainable]:
            layer.trainable = False
        for layer in backbone.layers[-self.trainable:]:
            # Batch normalization stays frozen: fine-tuning its statistics on a few batches
            # undoes the pretraining (Keras's transfer-learning guide).
            layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
        return True


def _preprocess(x, mode: str):
    """The family's preprocess_input as serializable Keras layers, in float32."""
    import keras

    if mode == "tf":
        return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess", dtype="float32")(x)
    if mode == "torch":
        mean = [255 * m for m in _IMAGENET_MEAN_RGB]
        variance = [(255 * s) ** 2 for s in _IMAGENET_STD_RGB]
        return keras.layers.Normalization(mean=mean, variance=variance, name="preprocess", dtype="float32")(x)
    if mode == "caffe":
        # RGB -> BGR and minus the mean pixel in one fixed linear map of the channels.
        swap = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
        return keras.layers.Dense(3, name="preprocess", dtype="float32", trainable=False,
                                  kernel_initializer=keras.initializers.Constant(swap),
                                  bias_initializer=keras.initializers.Constant([-m for m in _CAFFE_MEAN_BGR]))(x)
    return x  # "inside": the backbone preprocesses 0..255 pixels itself


def _functions() -> dict[str, Any]:
    """keras.applications' model functions by name (an explicit table: no lookup by user input)."""
    from keras import applications as a

    functions = (a.ConvNeXtTiny, a.ConvNeXtSmall, a.ConvNeXtBase, a.ConvNeXtLarge, a.ConvNeXtXLarge,
                 a.DenseNet121, a.DenseNet169, a.DenseNet201, a.EfficientNetB0, a.EfficientNetB1,
                 a.EfficientNetB2, a.EfficientNetB3, a.EfficientNetB4, a.EfficientNetB5, a.EfficientNetB6,
                 a.EfficientNetB7, a.EfficientNetV2B0, a.EfficientNetV2B1, a.EfficientNetV2B2, a.EfficientNetV2B3,
                 a.EfficientNetV2S, a.EfficientNetV2M, a.EfficientNetV2L, a.InceptionResNetV2, a.InceptionV3,
                 a.MobileNet, a.MobileNetV2, a.MobileNetV3Small, a.MobileNetV3Large, a.NASNetMobile,
                 a.NASNetLarge, a.ResNet50, a.ResNet101, a.ResNet152, a.ResNet50V2, a.ResNet101V2,
                 a.ResNet152V2, a.VGG16, a.VGG19, a.Xception)
    return {function.__name__: function for function in functions}


@contextlib.contextmanager
def _keras_download(backbone: str):
    """Keras's own download and cache of ImageNet weights, with its progress on stderr; offline
    (TFTRAIN_OFFLINE=1), Keras reads its cache but never the network. A missing file is one
    line naming it and the folder to put it in, as for datasets."""
    import urllib.error
    import urllib.request  # here: ~30 ms that `tftrain validate` never needs

    from tftrain.data.base import OFFLINE_ENV, keras_cache_dir, offline

    class RefuseDownloads(urllib.request.BaseHandler):
        """Fails every request: Keras may read its cache, never the network."""

        def default_open(self, request):
            raise urllib.error.URLError("downloads are off")

    refuse = offline()
    previous = getattr(urllib.request, "_opener", None)  # the stdlib's global opener, restored after
    if refuse:
        urllib.request.install_opener(urllib.request.build_opener(RefuseDownloads))
    # Offline, Keras's "Downloading data from ..." line would precede the refusal: held back, as
    # are its warnings (shown once the weights loaded), so a failure is the one line below.
    held = io.StringIO()
    try:
        with contextlib.redirect_stdout(held if refuse else sys.stderr), warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            yield
        sys.stderr.write(held.getvalue())
        for warning in seen:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    except Exception as exc:  # Keras raises a bare Exception for failed downloads
        found = _FETCH_FAILED.search(str(exc))
        if found is None:
            raise
        url = found.group(1)
        folder = keras_cache_dir().parent / "models"
        why = f"downloads are off: {OFFLINE_ENV} is set" if refuse else f"download failed: {str(exc)[-120:]}"
        raise DataError(f"model.weights: imagenet weights of {backbone}: {os.path.basename(url)} is not in "
                        f"{folder}; download {url} and put it there ({why})") from None
    finally:
        if refuse:
            urllib.request.install_opener(previous)

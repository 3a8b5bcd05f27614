"""`model.type: hub`: a keras-hub preset (BERT, DistilBERT, RoBERTa, ResNet, ViT, ...) with its
own preprocessor and a classification head sized from the data.

    model:
      type: hub
      preset: presets/bert_tiny       # a keras-hub preset folder, or kaggle://... / hf://...
      task: text_classifier           # text_classifier | image_classifier
      num_classes: auto               # auto: from the labels
      sequence_length: 128            # text: tokens per example (null: the preset's)
      lora: {rank: 4, alpha: 8, targets: [query, value]}   # null: no LoRA
      trainable: true                 # true | false (the head only) | N (the last N backbone layers too)

The model takes what the data holds: raw strings for text (the preset's tokenizer and
preprocessor are layers of the model), raw pixels for images (its image converter resizes and
rescales them). So `tftrain predict` and `export` take the same raw inputs as training, as for
`application` backbones. keras-hub is an optional extra (`pip install 'tftrain[hub]'`).
"""

from __future__ import annotations

import contextlib
from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from tftrain.errors import DataError
from tftrain.models import hub_preset
from tftrain.models.base import ModelSchema, ModelSpec
from tftrain.models.hub_preset import import_keras_hub
from tftrain.spec.base import Strict, show
from tftrain.spec.catalog import check_activation

MAX_SEQUENCE = 1_000_000  # far above any position embedding: the preset's own limit is checked too


class LoraOptions(Strict):
    """Low-rank adapters on the backbone's layers (Keras's `enable_lora`): the backbone is frozen
    and only the adapters (and the head) train."""

    rank: PositiveInt = 4  # the rank of the LoRA papers' and keras-hub's examples
    alpha: PositiveFloat | None = None  # null: the rank (Keras's default: the update scaled by 1)
    targets: list[str] | None = Field(default=None, min_length=1)  # null: the backbone's default_lora_layer_names()


class HubModel(ModelSchema):
    """A keras-hub preset's backbone and preprocessor, and a classification head."""

    type: Literal["hub"]
    preset: str  # no sensible default: which pretrained model is the user's choice
    task: Literal["text_classifier", "image_classifier"]  # no default: the preset and the data decide
    num_classes: Literal["auto"] | PositiveInt = "auto"  # auto: one output per class of the labels
    sequence_length: PositiveInt | None = None  # null: the preset's preprocessor's (text only)
    lora: LoraOptions | None = None  # null: fine-tune the weights `trainable` selects
    trainable: bool | PositiveInt = True  # Keras's default: every layer trains; false trains the head only
    output_activation: str | None = None  # logits, as keras-hub's classifiers: pair with from_logits=true

    _check_activation = field_validator("output_activation")(check_activation)

    @field_validator("preset")
    @classmethod
    def _preset(cls, value: str) -> str:
        folder = hub_preset.local_folder(value, hub_preset.offline())
        if folder is None:
            return value  # keras-hub downloads it (into its cache) when the model is built
        if hub_preset.is_handle(value) and not (folder / "config.json").is_file():
            raise ValueError(f"{value}: downloads are off ({hub_preset.OFFLINE_ENV} is set) and {folder} holds no copy; put "
                             "the preset's files (config.json, model.weights.h5, tokenizer.json, assets/, ...) there")
        hub_preset.read_backbone_config(folder)
        return value

    @model_validator(mode="after")
    def _fits_preset(self) -> HubModel:
        if self.lora is not None and self.trainable is not True:
            raise ValueError(f"lora: trains only its adapters and the head; trainable: {show(self.trainable)} would "
                             "freeze them too (leave trainable: true with lora)")
        if self.sequence_length is not None and self.task != "text_classifier":
            raise ValueError(f"sequence_length: {self.sequence_length} is for text; task {self.task} takes images")
        folder = hub_preset.local_folder(self.preset, hub_preset.offline())
        if folder is None:
            return self  # checked once keras-hub has it
        config = hub_preset.read_backbone_config(folder)
        hub_preset.check_task(folder, self.task, config)
        longest = hub_preset.max_sequence_length(config)
        if self.sequence_length is not None and min(longest or MAX_SEQUENCE, MAX_SEQUENCE) < self.sequence_length:
            raise ValueError(f"sequence_length: {self.sequence_length} is more than the {longest} tokens "
                             f"{config.get('class_name')} takes (its max_sequence_length)")
        return self

    def source(self) -> str:
        """What keras-hub loads: the folder, a handle's offline copy, or the handle itself."""
        folder = hub_preset.local_folder(self.preset, hub_preset.offline())
        return self.preset if folder is None else str(folder)

    def layer_rows(self) -> list[tuple[str, str, str, str]]:
        lora = "none" if self.lora is None else f"rank={self.lora.rank}, alpha={self.lora.alpha or self.lora.rank}"
        return [("preprocessor", f"{self.task} preprocessor", f"sequence_length={self.sequence_length}", "input"),
                ("backbone", self.preset, f"trainable={self.trainable}, lora={lora}", "preprocessor"),
                ("head", "dense", f"activation={self.output_activation}", "backbone")]

    # -- checks -------------------------------------------------------------------------------
    def takes_strings(self) -> bool:
        """Text classifiers take raw strings (their tokenizer is part of the model)."""
        return self.task == "text_classifier"

    def check(self, spec: ModelSpec) -> None:
        """Strings for text, images for images, the class count, LoRA targets that exist; then a
        symbolic build (the preset's weights are not read)."""
        text = spec.input_dtype.startswith(("<U", "|S", "str", "string", "bytes", "object"))
        if self.task == "text_classifier" and (spec.input_shape != () or not text):
            raise DataError(f"model.task text_classifier takes one string per example; the examples of "
                            f"{spec.dataset} are {spec.input_dtype} of shape {spec.input_shape}")
        shape = spec.input_shape
        if self.task == "image_classifier" and (text or len(shape) != 3 or shape[-1] != 3):
            raise DataError(f"model.task image_classifier takes RGB images (height, width, 3); the "
                            f"examples of {spec.dataset} are {spec.input_dtype} of shape {shape}")
        if self.num_classes != "auto" and self.num_classes != spec.outputs:
            raise DataError(f"model.num_classes: {self.num_classes}, but the labels of {spec.dataset} have "
                            f"{spec.outputs} classes (num_classes: auto takes them from the labels)")
        from tftrain.models.keras_build import check_symbolically

        check_symbolically(lambda: self.build(spec, load_weights=False), spec, "model (its head)")

    # -- building -----------------------------------------------------------------------------
    def build(self, spec: ModelSpec, load_weights: bool = True):
        """The preset's classifier task: its preprocessor (raw inputs -> features, mapped over
        the data as keras-hub's own fit does), backbone (LoRA / trainable applied) and head.
        `load_weights=False`: no preprocessor and no weights read (a build for shapes)."""
        hub = import_keras_hub()
        classes = {"text_classifier": hub.models.TextClassifier, "image_classifier": hub.models.ImageClassifier}
        with _loading(self.preset):
            preprocessor = self._preprocessor(hub) if load_weights else None
            # compile=False: tftrain compiles it (keras-hub's default compile makes an optimizer).
            task = classes[self.task].from_preset(self.source(), num_classes=spec.outputs, load_weights=load_weights,
                                                  activation=self.output_activation, preprocessor=preprocessor,
                                                  compile=False)
        from tftrain.models.hub_tuning import apply_lora, apply_trainable

        if self.lora is not None:
            apply_lora(task.backbone, self.lora.rank, self.lora.alpha, self.lora.targets)
        else:
            apply_trainable(task.backbone, self.trainable)
        return task

    def set_stage(self, model, unfrozen: bool) -> None:
        from tftrain.models.hub_tuning import apply_trainable, train_everything

        train_everything(model.backbone)
        if not unfrozen:
            apply_trainable(model.backbone, self.trainable)

    def _preprocessor(self, hub):
        """The preset's own preprocessor for the task (tokenizer and packer, or image converter)."""
        if self.task == "text_classifier":
            options = {} if self.sequence_length is None else {"sequence_length": self.sequence_length}
            return hub.models.TextClassifierPreprocessor.from_preset(self.source(), **options)
        return hub.models.ImageClassifierPreprocessor.from_preset(self.source())


@contextlib.contextmanager
def _loading(preset: str):
    """keras-hub's errors about a preset (a task it cannot do, a file it lacks) as one line."""
    try:
        yield
    except (ValueError, FileNotFoundError, OSError) as exc:
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__
        raise DataError(f"model.preset: {preset}: {text}") from None


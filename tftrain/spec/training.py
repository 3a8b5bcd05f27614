"""The `training:` block: how long, which loop, the recipes that change the loop (early stopping,
plateau, class weights, checkpoints) and the speed and placement settings.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveFloat, field_validator, model_validator

from tftrain.plugins import check_entry, is_registered_name
from tftrain.spec.base import MAX_EPOCHS, Epochs, Steps, Strict, Threads, show

# `gpu:0`, `/gpu:0`, `/device:GPU:0`, `CPU:1`: the local device names tf.distribute accepts.
DEVICE_PATTERN = r"(/?device:|/)?(cpu|gpu):(\d+)"


class EarlyStoppingConfig(Strict):
    """Stop when `monitor` has not improved for `patience` epochs (keras.callbacks.EarlyStopping)."""

    monitor: str = "val_loss"  # validation loss is what generalisation is judged on
    patience: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] = 3  # a few noisy epochs are not a plateau
    mode: Literal["min", "max", "auto"] = "auto"  # Keras infers max for accuracy-like names
    min_delta: Annotated[float, Field(ge=0)] = 0.0  # any improvement counts
    restore_best_weights: bool = False  # Keras's default; the best model is kept in checkpoints/ anyway


class PlateauConfig(Strict):
    """Divide the learning rate when `monitor` stops improving (keras.callbacks.ReduceLROnPlateau)."""

    monitor: str = "val_loss"  # Keras's default: validation loss
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1  # Keras's default: a tenth of the rate
    patience: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] = 2  # below early stopping's 3: the rate drops before such a run would stop
    min_lr: Annotated[float, Field(ge=0)] = 0.0  # Keras's default: no floor
    cooldown: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] = 0  # Keras's default: count patience again at once
    min_delta: Annotated[float, Field(ge=0)] = 1e-4  # Keras's default: smaller changes are no improvement
    mode: Literal["min", "max", "auto"] = "auto"  # max for accuracy/auc-like names, else min


class CheckpointConfig(Strict):
    """Which metric decides the `best` checkpoint, and how often the resume state is saved."""

    monitor: str = "val_loss"  # validation loss; falls back to `loss` when there is no validation
    mode: Literal["min", "max", "auto"] = "auto"  # max for accuracy/auc-like names, else min
    every_steps: Steps | None = None  # null: resume state at epoch ends; N: every N steps too (long epochs)


class UnfreezeConfig(Strict):
    """`training.unfreeze`: train the head first (the backbone frozen by `model.trainable`), then,
    from epoch `epoch` (counted from 1, as the progress shows) the whole backbone too at
    `learning_rate` (Keras's transfer-learning guide: the new head, then everything at a low rate);
    tftrain.training.callbacks.unfreeze switches the stage."""

    epoch: int = Field(ge=2, le=MAX_EPOCHS)  # no default: how long the head trains alone is the user's choice
    learning_rate: PositiveFloat | None = None  # null: the optimizer's rate goes on; fine-tuning usually wants ~10x less


class TrainingConfig(Strict):
    """How long and with which loop to train."""

    loop: Literal["fit", "custom"] = "fit"  # model.fit; `custom` is a tf.GradientTape loop
    epochs: Epochs = 5  # enough to see curves move on the seed datasets
    steps: Steps | None = None  # set -> train this many steps instead of epochs
    sampling: Literal["sequential", "with_replacement"] = "sequential"  # epochs walk the (shuffled) data in order
    log_every: Steps | None = None  # steps per progress line/history row in steps mode; null -> steps/10
    early_stopping: EarlyStoppingConfig | None = None  # off: the user chose the epoch count
    reduce_lr_on_plateau: PlateauConfig | None = None  # off: the learning rate is optimizer.learning_rate
    class_weight: Literal["balanced"] | dict[int | str, Annotated[float, Field(ge=0)]] | None = None  # every example counts the same
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)  # best + last every epoch
    run_eagerly: bool = False  # true runs Python step by step, for debugging with print/pdb
    steps_per_execution: Steps | Literal["auto"] = "auto"  # steps per compiled call: same results, less Python per step
    jit_compile: bool | Literal["auto"] = "auto"  # XLA as Keras decides: on GPUs when the model supports it, never on CPU
    cpu_threads: Threads | Literal["auto"] = "auto"  # TF intra-op threads; auto: 1 for tiny steps on CPU, else one per core
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16", "auto"] = "float32"  # exact by default; auto: bfloat16 where the hardware has it and the model gains
    in_graph: bool | Literal["auto"] = "auto"  # auto: data in memory on one device is gathered inside the compiled step
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"  # one device; scaling out is opt-in
    devices: list[str] | None = None  # mirrored only: null -> every visible GPU (the CPU if none)
    distribute_timeout: Annotated[int, Field(gt=0, le=7 * 24 * 3600)] = 300  # seconds to wait for the other workers: time to start them by hand
    unfreeze: UnfreezeConfig | None = None  # null: model.trainable holds for the whole run
    # A plugin's registered callbacks: ["my_pkg>Recorder", {"my_pkg>Recorder": {every: 10}}].
    callbacks: list[Any] = Field(default_factory=list)  # none: tftrain's own callbacks only

    @field_validator("callbacks")
    @classmethod
    def _plugin_callbacks(cls, value: list[Any]) -> list[dict[str, dict[str, Any]]]:
        """Each a registered name or `{name: {parameters}}`; returned as `[{name: {parameters}}]`."""
        entries = []
        for i, entry in enumerate(value):
            name, params = (entry, {}) if isinstance(entry, str) else (
                next(iter(entry.items())) if isinstance(entry, dict) and len(entry) == 1 else (None, None))
            params = {} if params is None and name is not None else params
            if not isinstance(name, str) or not isinstance(params, dict):
                raise ValueError(f".{i}: expected a callback's registered name or {{name: {{parameters}}}} such as "
                                 f'{{"my_pkg>Recorder": {{every: 10}}}}, got {show(entry)}')
            if not is_registered_name(name):
                raise ValueError(f'.{i}: {show(name)} is not a registered name ("package>Name"): training.callbacks '
                                 "lists a plugin's own callbacks (tftrain's are keys of training:)")
            check_entry("callback", name, params)
            entries.append({name: dict(params)})
        return entries

    @field_validator("devices")
    @classmethod
    def _device_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("expected at least one device such as gpu:0, or null for every GPU")
        for name in value:
            if not re.fullmatch(DEVICE_PATTERN, name, flags=re.IGNORECASE):
                raise ValueError(f"expected device names such as gpu:0 or cpu:1, got {show(name)}")
        canonical = [canonical_device(name) for name in value]
        duplicates = sorted(name for name, n in Counter(canonical).items() if n > 1)
        if duplicates:
            raise ValueError(f"{duplicates[0]} is listed twice")
        return value

    @field_validator("class_weight", mode="before")
    @classmethod
    def _class_weights(cls, value: Any) -> Any:
        """`{class: weight}`: keys are class indices (digits too: "0" is what a JSON round trip of 0
        gives) or class names; weights are numbers >= 0, at least one of them positive."""
        if not isinstance(value, dict):
            return value
        weights, given_as = {}, {}
        for key, weight in value.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
                raise ValueError(f".{key}: expected a weight >= 0, got {show(weight)}")
            index = int(key) if isinstance(key, str) and key.isdigit() else key
            if index in weights:  # 0 and "0" (or "00") name one class: merging them would hide one weight
                raise ValueError(f".{key}: class {index} is given twice ({show(given_as[index])} and {show(key)})")
            weights[index], given_as[index] = float(weight), key
        if not any(weights.values()):
            raise ValueError("expected at least one positive weight (classes not listed weigh 1.0)")
        return weights

    @model_validator(mode="after")
    def _sampling_needs_steps(self) -> TrainingConfig:
        if self.sampling == "with_replacement" and self.steps is None:
            raise ValueError("sampling 'with_replacement' draws examples forever: set training.steps")
        if self.log_every is not None and self.steps is not None and self.steps % self.log_every:
            # Training is cut into whole log intervals: the rest would silently not be trained.
            fits = self.steps // self.log_every * self.log_every
            raise ValueError(f".log_every: training.steps {self.steps} is not a multiple of log_every {self.log_every} "
                             f"(it would train {fits} steps); use steps and log_every that divide evenly")
        return self

    @model_validator(mode="after")
    def _devices_need_mirrored(self) -> TrainingConfig:
        if self.devices is not None and self.distribute != "mirrored":
            # A leading "." makes format_validation_error report this under training.devices.
            raise ValueError(f".devices: only used with distribute: mirrored (distribute is {self.distribute}); "
                             "multi_worker uses every GPU of each worker")
        if self.in_graph is True and self.distribute != "none":
            raise ValueError(f".in_graph: true cannot be combined with distribute: {self.distribute} (a strategy "
                             "shares each batch out to its replicas through tf.data); use auto or false")
        if self.jit_compile is True and self.distribute != "none":
            # Keras itself turns `auto` off under a strategy; XLA fails on replicas' mirrored variables.
            raise ValueError(f".jit_compile: true cannot be combined with distribute: {self.distribute}; "
                             "use false or auto (auto turns XLA off under a strategy, as Keras does)")
        if (self.loop == "fit" and self.distribute != "none" and self.steps_per_execution != "auto"
                and self.steps_per_execution > 1):
            # Keras's multi-step call puts the step in a tf.cond, which fails under a strategy.
            raise ValueError(f".steps_per_execution: {self.steps_per_execution} cannot be combined with loop: fit "
                             f"and distribute: {self.distribute} (Keras's fit fails on it under tf.distribute, "
                             "keras-team/keras#19246); use 1 or auto, or loop: custom, which takes any value")
        return self


def canonical_device(name: str) -> str:
    """`gpu:0`, `/GPU:0` and `/device:gpu:0` all name `/device:GPU:0`."""
    match = re.fullmatch(DEVICE_PATTERN, name, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"not a device name: {name!r}")
    return f"/device:{match[2].upper()}:{int(match[3])}"

"""What trains in a pretrained backbone: LoRA adapters (Keras's `enable_lora`) or the last N
layers (`trainable`), for keras-hub backbones; also read by the parameter table."""

from __future__ import annotations

from pathlib import Path

from tftrain.errors import DataError
from tftrain.spec.base import suggest


def lora_layers(backbone) -> list:
    """The backbone's layers that take LoRA (Keras's Dense and EinsumDense), walked as
    keras-hub's own `Backbone.enable_lora` walks them."""
    return [layer for layer in backbone._flatten_layers(include_self=False)  # keras-hub's own walk
            if hasattr(layer, "enable_lora") and layer.weights]


def apply_lora(backbone, rank: int, alpha: float | None, targets: list[str] | None) -> None:
    """Freeze the backbone and put rank-`rank` adapters on the `targets` layers (keras-hub's
    `enable_lora`); their biases stay frozen too, so only the adapters train (as peft's
    default `bias: none`). `alpha`: the update is scaled by alpha / rank (Keras's lora_alpha)."""
    names = sorted({layer.name for layer in lora_layers(backbone)})
    if not names:
        raise DataError(f"model.lora: {backbone.name} has no layer that takes LoRA (Dense or EinsumDense)")
    targets = targets if targets is not None else [n for n in backbone.default_lora_layer_names() if n in names]
    for target in targets:
        if target not in names:
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise DataError(f"model.lora.targets: no layer {target!r} in {backbone.name} takes LoRA"
                            f"{suggest(target, names)}; such layers: {shown}")
    if not targets:
        raise DataError(f"model.lora.targets: {backbone.name} has none of its default LoRA layers "
                        f"({', '.join(backbone.default_lora_layer_names())}); name some: {', '.join(names[:12])}")
    backbone.enable_lora(rank, target_layer_names=targets)
    for layer in lora_layers(backbone):
        if getattr(layer, "lora_enabled", False):
            layer.lora_alpha = alpha if alpha is not None else rank
            if getattr(layer, "bias", None) is not None:
                layer.bias.trainable = False


def apply_trainable(backbone, trainable: bool | int) -> None:
    """true: every layer trains; false: none (the head alone trains); N: the last N layers that
    hold weights train, the earlier ones are frozen."""
    if trainable is True:
        return
    if trainable is False:
        backbone.trainable = False
        return
    weighted = [layer for layer in backbone.layers if layer.weights]
    if trainable > len(weighted):
        raise DataError(f"model.trainable: {trainable} layers, but {backbone.name} has {len(weighted)} "
                        "layers with weights")
    for layer in weighted[:-trainable]:
        layer.trainable = False


def train_everything(model, keep_frozen: tuple = ()) -> None:
    """Every layer of `model`, nested ones included, trains (layers of the `keep_frozen` types
    excepted). Setting `model.trainable` is not enough: a Functional model does not pass it on to
    layers frozen one by one."""
    for layer in model._flatten_layers(include_self=True):  # Keras's own walk
        layer.trainable = not isinstance(layer, keep_frozen)


# -- adapters kept beside a saved model ----------------------------------------------------------
# Keras merges LoRA into the kernels whenever it saves (Dense.save_own_variables), so a run's
# .keras files hold merged kernels only; keras-hub's own `save_lora_weights` file beside each one
# keeps the adapters themselves, for `tftrain export --lora separate`.
ADAPTERS_SUFFIX = ".lora.h5"  # keras-hub's `save_lora_weights` requires this suffix


def adapters_path(model_file) -> Path:
    """Where the adapters of the model saved at `model_file` (X.keras) are kept: X.lora.h5."""
    path = Path(model_file)
    return path.with_name(path.name.removesuffix(".keras") + ADAPTERS_SUFFIX)


def has_adapters(model) -> bool:
    """Whether `model` is a keras-hub task whose backbone carries LoRA adapters."""
    return bool(getattr(getattr(model, "backbone", None), "_lora_enabled_layers", None))


def save_adapters(model, model_file) -> None:
    """Write the adapters of `model` (saved at `model_file`) with keras-hub's `save_lora_weights`,
    under a temporary name first, plus `alpha` and `targets` (which keras-hub's file lacks) as
    attributes of its `lora` group; nothing for a model without LoRA."""
    if not has_adapters(model):
        return
    import h5py

    target = adapters_path(model_file)
    tmp = target.with_name(f".tmp-{target.name}")
    try:
        model.backbone.save_lora_weights(str(tmp))
        enabled = [layer for layer in lora_layers(model.backbone) if getattr(layer, "lora_enabled", False)]
        with h5py.File(tmp, "a") as file:
            file["lora"].attrs["alpha"] = float(enabled[0].lora_alpha)
            file["lora"].attrs["targets"] = sorted({layer.name for layer in enabled})
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

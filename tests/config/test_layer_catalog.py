"""The TF-free layer, component and backbone catalogs must equal what Keras really has (issue 15):
every parameter name, which ones are required, defaults that fit the declared types, every
built-in layer either offered or refused with a reason, and preprocessing equal to Keras's own."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from tftrain.models import application, layers
from tftrain.models.layer_config import check_value
from tftrain.spec import catalog

KERAS_LAYERS = {name: cls for name in dir(keras.layers)
                if inspect.isclass(cls := getattr(keras.layers, name)) and issubclass(cls, keras.layers.Layer)}


def _signature(cls) -> dict[str, inspect.Parameter]:
    return {p.name: p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _plain(value):
    """A Keras default as YAML would give it (tuples are lists)."""
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _layer_class(name: str, class_name: str):
    """Keras's class, or keras-hub's for its layers (skipped where keras-hub is not installed)."""
    if name in layers.HUB_LAYERS:
        return getattr(pytest.importorskip("keras_hub").layers, class_name)
    return KERAS_LAYERS[class_name]


@pytest.mark.parametrize("name", sorted(layers.LAYERS))
def test_layer_parameters_equal_keras_signature(name):
    class_name, params = layers.LAYERS[name]
    signature = _signature(_layer_class(name, class_name))
    own = set(signature) - set(layers.COMMON) - set(layers.UNSUPPORTED_PARAMS)
    assert set(params) == own, f"{name}: missing {sorted(own - set(params))}, extra {sorted(set(params) - own)}"
    assert next(iter(params), None) == next((p for p in signature if p in params), None)  # the shorthand's target
    for param, kind in params.items():
        default = signature[param].default
        assert (default is inspect.Parameter.empty) == kind.endswith("!"), f"{name}.{param}: required?"
        if default is not inspect.Parameter.empty and default is not None:
            check_value(kind, _plain(default), f"{name}.{param}")  # Keras's own default fits the type


def test_every_keras_layer_is_offered_or_refused_with_a_reason():
    offered = {class_name for class_name, _ in layers.LAYERS.values()} | set(layers.CLASS_ALIASES)
    missing = sorted(name for name in KERAS_LAYERS if name not in offered and name not in layers.REFUSED)
    assert not missing, f"keras.layers without a catalog entry or a refusal: {missing}"
    assert all(name in KERAS_LAYERS for name in layers.REFUSED)
    assert all(layers.CLASS_ALIASES[a] in offered and KERAS_LAYERS.get(a) in (None, KERAS_LAYERS[layers.CLASS_ALIASES[a]])
               for a in layers.CLASS_ALIASES)


@pytest.mark.parametrize("kind, module", [("regularizer", keras.regularizers), ("initializer", keras.initializers),
                                          ("constraint", keras.constraints)])
def test_components_equal_keras(kind, module):
    table = layers.COMPONENTS[kind]
    base = {"regularizer": keras.regularizers.Regularizer, "initializer": keras.initializers.Initializer,
            "constraint": keras.constraints.Constraint}[kind]
    keras_classes = {c for n in dir(module) if inspect.isclass(c := getattr(module, n)) and issubclass(c, base)}
    assert {getattr(module, class_name) for class_name, _ in table.values()} == keras_classes - {base}
    for name, (class_name, params) in table.items():
        signature = _signature(getattr(module, class_name))
        assert set(params) == set(signature), name
        for param, kind_ in params.items():
            if signature[param].default is not None:
                check_value(kind_, _plain(signature[param].default), f"{name}.{param}")


@pytest.mark.parametrize("kind", ["regularizer", "initializer", "constraint"])
def test_every_name_keras_accepts_for_a_component_is_accepted(kind):
    from keras.src import constraints, initializers, regularizers  # their name tables are not public

    from tftrain.models.layer_config import check_component

    names = {"regularizer": regularizers, "initializer": initializers, "constraint": constraints}[kind].ALL_OBJECTS_DICT
    bases = (keras.regularizers.Regularizer, keras.initializers.Initializer, keras.constraints.Constraint)
    for name, cls in names.items():
        if cls in bases:  # the abstract base classes compute nothing
            continue
        ours = check_component(kind, name, "x")
        assert getattr(getattr(keras, f"{kind}s"), layers.COMPONENTS[kind][ours][0]) is cls, name


def test_activations_are_every_single_argument_keras_activation():
    public = {n for n in dir(keras.activations) if not n.startswith("_")} - {"get", "serialize", "deserialize"}
    needs_more = {n for n in public if sum(p.default is inspect.Parameter.empty
                                           for p in inspect.signature(getattr(keras.activations, n)).parameters.values()) > 1}
    assert catalog.ACTIVATIONS == public - needs_more
    x = keras.ops.convert_to_tensor(np.linspace(-2, 2, 8, dtype="float32").reshape(2, 4))
    for name in catalog.ACTIVATIONS:
        assert keras.activations.get(name)(x).shape[0] == 2, name  # runs on a tensor alone (glu halves the last axis)


def test_layers_build_from_catalog_entries_with_nested_components():
    from tftrain.models.layer_config import check_layer, keras_layer

    entry = check_layer({"Conv2D": {"filters": 4, "kernel_size": 3, "kernel_regularizer": {"l1_l2": {"l1": 0.1}},
                                    "kernel_initializer": {"variance_scaling": {"scale": 2.0, "mode": "fan_out"}},
                                    "kernel_constraint": {"max_norm": 3}}}, "x")
    layer = keras.layers.deserialize(keras_layer(entry, "c"))
    assert isinstance(layer.kernel_regularizer, keras.regularizers.L1L2) and layer.kernel_regularizer.l1 == 0.1
    assert layer.kernel_initializer.scale == 2.0 and layer.kernel_constraint.max_value == 3
    wrapped = keras.layers.deserialize(keras_layer(check_layer({"bidirectional": {"layer": {"lstm": 5}}}, "x"), "b"))
    assert wrapped.forward_layer.units == 5 and wrapped.name == "b"


def test_backbones_equal_keras_applications():
    functions = {n for n in dir(keras.applications) if inspect.isfunction(getattr(keras.applications, n))}
    assert {function for function, *_ in application.BACKBONES.values()} == functions
    assert set(application._functions()) == functions
    managed = {"include_top", "weights", "input_tensor", "input_shape", "pooling", "classes", "classifier_activation",
               "name", "include_preprocessing", "dropout", "dropout_rate"}
    for name, (function, _, _, options) in application.BACKBONES.items():
        parameters = set(inspect.signature(getattr(keras.applications, function)).parameters)
        assert set(options) == parameters - managed, name


# The module whose preprocess_input each family uses.
FAMILIES = {"mobilenet_v2": keras.applications.mobilenet_v2, "resnet50": keras.applications.resnet,
            "resnet50_v2": keras.applications.resnet_v2, "densenet121": keras.applications.densenet,
            "vgg16": keras.applications.vgg16, "xception": keras.applications.xception,
            "mobilenet_v3_small": keras.applications.mobilenet_v3, "efficientnet_b0": keras.applications.efficientnet,
            "efficientnet_v2_b0": keras.applications.efficientnet_v2, "convnext_tiny": keras.applications.convnext}


@pytest.mark.parametrize("backbone", sorted(FAMILIES))
def test_preprocessing_layers_equal_keras_preprocess_input(backbone):
    """The layers that stand for preprocess_input in the model compute what Keras's function
    does on raw 0..255 pixels (for backbones that preprocess inside, that is nothing)."""
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    inputs = keras.Input((4, 4, 3))
    layer_model = keras.Model(inputs, application._preprocess(inputs, application.BACKBONES[backbone][1]))
    expected = FAMILIES[backbone].preprocess_input(x.copy())
    np.testing.assert_allclose(layer_model.predict(x, verbose=0), keras.ops.convert_to_numpy(expected), atol=1e-3)


def test_backbone_minimum_sizes_are_keras_own():
    """Spot checks, built symbolically: the minimum passes, one pixel less is refused by Keras."""
    from tftrain.models.keras_build import symbolic

    for function, size in (("MobileNetV3Small", 32), ("Xception", 71)):
        entry = next(v for v in application.BACKBONES.values() if v[0] == function)
        assert entry[2] == size
        with symbolic():
            application._functions()[function](include_top=False, weights=None, input_shape=(size, size, 3))
            with pytest.raises(ValueError):
                application._functions()[function](include_top=False, weights=None, input_shape=(size - 1, size - 1, 3))

"""The Keras layers, regularizers, initializers and constraints a config may name, with the
constructor parameters each one takes and the type each parameter expects.

Plain dicts only (no TensorFlow, Keras or NumPy): `tftrain validate` reads them to check a
200-layer config in milliseconds, and the builders turn entries into Keras's own serialized form
(`{"class_name": ..., "config": ...}`) for `keras.layers.deserialize`. `tests/config/test_layer_catalog.py`
keeps every entry equal to the real Keras signatures (names, required parameters, defaults that
fit the declared types) and checks that every built-in layer is either here or refused with a
reason.

Parameter types (the kinds `tftrain.models.layer_config` checks):
  int, float (an int is fine), bool, str, `a|b|c` (one of these strings),
  ints (an int or a list of ints, nested for paddings and croppings), floats (a number or a
  list of numbers), shape (a list of ints or nulls), activation (a Keras activation name),
  initializer / regularizer / constraint (a name, or `{name: {its parameters}}`), layer (a
  layer entry, for wrappers such as bidirectional), data (any plain YAML value).
  A trailing `?` allows null; `!` marks a required parameter (no default in Keras).
"""

from __future__ import annotations

# Parameters of keras.layers.Layer itself, accepted by every layer.
COMMON = {"name": "str?", "trainable": "bool", "dtype": "str?"}

_DATA_FORMAT = "channels_last|channels_first?"
_REG, _INIT, _CONS = "regularizer?", "initializer", "constraint?"


def _weights(*prefixes: str, activity: bool = True) -> dict[str, str]:
    """`<p>_initializer`, `<p>_regularizer`, `<p>_constraint` for each prefix, in Keras's order."""
    out = {f"{p}_initializer": _INIT for p in prefixes}
    out.update({f"{p}_regularizer": _REG for p in prefixes})
    if activity:
        out["activity_regularizer"] = _REG
    out.update({f"{p}_constraint": _CONS for p in prefixes})
    return out


def _conv(padding: str = "valid|same", groups: bool = True, transpose: bool = False) -> dict[str, str]:
    params = {"filters": "int!", "kernel_size": "ints!", "strides": "ints", "padding": padding}
    if transpose:
        params["output_padding"] = "ints?"
    params.update({"data_format": _DATA_FORMAT, "dilation_rate": "ints"})
    if groups:
        params["groups"] = "int"
    params.update({"activation": "activation?", "use_bias": "bool", **_weights("kernel", "bias")})
    return params


def _separable(padding: str) -> dict[str, str]:
    return {"filters": "int!", "kernel_size": "ints!", "strides": "ints", "padding": padding,
            "data_format": _DATA_FORMAT, "dilation_rate": "ints", "depth_multiplier": "int",
            "activation": "activation?", "use_bias": "bool", **_weights("depthwise", "pointwise", "bias")}


def _depthwise(padding: str) -> dict[str, str]:
    return {"kernel_size": "ints!", "strides": "ints", "padding": padding, "depth_multiplier": "int",
            "data_format": _DATA_FORMAT, "dilation_rate": "ints", "activation": "activation?",
            "use_bias": "bool", **_weights("depthwise", "bias")}


def _pool(required: bool) -> dict[str, str]:
    return {"pool_size": "ints!" if required else "ints", "strides": "ints?", "padding": "valid|same",
            "data_format": _DATA_FORMAT}


_GLOBAL_POOL = {"data_format": _DATA_FORMAT, "keepdims": "bool"}
_ADAPTIVE_POOL = {"output_size": "ints!", "data_format": _DATA_FORMAT}

_RNN_FLAGS = {"return_sequences": "bool", "return_state": "bool", "go_backwards": "bool", "stateful": "bool"}
_RECURRENT_WEIGHTS = {"kernel_initializer": _INIT, "recurrent_initializer": _INIT, "bias_initializer": _INIT}
_RECURRENT_REGS = {"kernel_regularizer": _REG, "recurrent_regularizer": _REG, "bias_regularizer": _REG,
                   "activity_regularizer": _REG, "kernel_constraint": _CONS, "recurrent_constraint": _CONS,
                   "bias_constraint": _CONS}
_LSTM = {"units": "int!", "activation": "activation?", "recurrent_activation": "activation?", "use_bias": "bool",
         **_RECURRENT_WEIGHTS, "unit_forget_bias": "bool", **_RECURRENT_REGS, "dropout": "float",
         "recurrent_dropout": "float", "seed": "int?", **_RNN_FLAGS, "unroll": "bool",
         "use_cudnn": "data"}
_GRU = {"units": "int!", "activation": "activation?", "recurrent_activation": "activation?", "use_bias": "bool",
        **_RECURRENT_WEIGHTS, **_RECURRENT_REGS, "dropout": "float", "recurrent_dropout": "float",
        "seed": "int?", **_RNN_FLAGS, "unroll": "bool", "reset_after": "bool", "use_cudnn": "data"}
_SIMPLE_RNN = {"units": "int!", "activation": "activation?", "use_bias": "bool", **_RECURRENT_WEIGHTS,
               **_RECURRENT_REGS, "dropout": "float", "recurrent_dropout": "float", **_RNN_FLAGS,
               "unroll": "bool", "seed": "int?"}
_CONV_LSTM = {"filters": "int!", "kernel_size": "ints!", "strides": "ints", "padding": "valid|same",
              "data_format": _DATA_FORMAT, "dilation_rate": "ints", "activation": "activation?",
              "recurrent_activation": "activation?", "use_bias": "bool", **_RECURRENT_WEIGHTS,
              "unit_forget_bias": "bool", **_RECURRENT_REGS, "dropout": "float", "recurrent_dropout": "float",
              "seed": "int?", **_RNN_FLAGS}

_ATTENTION_WEIGHTS = _weights("kernel", "bias")
_NORM_WEIGHTS = {"beta_initializer": _INIT, "gamma_initializer": _INIT, "beta_regularizer": _REG,
                 "gamma_regularizer": _REG, "beta_constraint": _CONS, "gamma_constraint": _CONS}
_VALUE_RANGE = {"value_range": "floats"}
_FILL = {"fill_mode": "str", "interpolation": "str", "seed": "int?", "fill_value": "float"}

# User name -> (Keras class name, {parameter: type}). Parameters in Keras's order: a layer given
# a single value instead of a mapping (`dropout: 0.25`, `activation: relu`) sets the first one.
LAYERS: dict[str, tuple[str, dict[str, str]]] = {
    # core
    "dense": ("Dense", {"units": "int!", "activation": "activation?", "use_bias": "bool",
                        **_weights("kernel", "bias"), "lora_rank": "int?", "lora_alpha": "float?"}),
    "einsum_dense": ("EinsumDense", {"equation": "str!", "output_shape": "shape!", "activation": "activation?",
                                     "bias_axes": "str?", **_weights("kernel", "bias", activity=False),
                                     "lora_rank": "int?", "lora_alpha": "float?",
                                     "gptq_unpacked_column_size": "int?"}),
    "embedding": ("Embedding", {"input_dim": "int!", "output_dim": "int!", "embeddings_initializer": _INIT,
                                "embeddings_regularizer": _REG, "embeddings_constraint": _CONS,
                                "mask_zero": "bool", "weights": "data", "lora_rank": "int?",
                                "lora_alpha": "float?"}),
    "reversible_embedding": ("ReversibleEmbedding", {
        "input_dim": "int!", "output_dim": "int!", "tie_weights": "bool", "embeddings_initializer": _INIT,
        "embeddings_regularizer": _REG, "embeddings_constraint": _CONS, "mask_zero": "bool",
        "reverse_dtype": "str?", "logit_soft_cap": "float?"}),
    "identity": ("Identity", {}),
    "masking": ("Masking", {"mask_value": "data"}),
    # activations
    "activation": ("Activation", {"activation": "activation!"}),
    "elu": ("ELU", {"alpha": "float"}),
    "leaky_relu": ("LeakyReLU", {"negative_slope": "float"}),
    "prelu": ("PReLU", {"alpha_initializer": _INIT, "alpha_regularizer": _REG, "alpha_constraint": _CONS,
                        "shared_axes": "ints?"}),
    "relu": ("ReLU", {"max_value": "float?", "negative_slope": "float", "threshold": "float"}),
    "softmax": ("Softmax", {"axis": "ints"}),
    # convolution
    "conv1d": ("Conv1D", _conv("valid|same|causal")),
    "conv2d": ("Conv2D", _conv()),
    "conv3d": ("Conv3D", _conv()),
    "conv1d_transpose": ("Conv1DTranspose", _conv(groups=False, transpose=True)),
    "conv2d_transpose": ("Conv2DTranspose", _conv(groups=False, transpose=True)),
    "conv3d_transpose": ("Conv3DTranspose", _conv(groups=False, transpose=True)),
    "separable_conv1d": ("SeparableConv1D", _separable("valid|same|causal")),
    "separable_conv2d": ("SeparableConv2D", _separable("valid|same")),
    "depthwise_conv1d": ("DepthwiseConv1D", _depthwise("valid|same|causal")),
    "depthwise_conv2d": ("DepthwiseConv2D", _depthwise("valid|same")),
    # pooling
    "max_pooling1d": ("MaxPooling1D", _pool(False)),
    "max_pooling2d": ("MaxPooling2D", _pool(False)),
    "max_pooling3d": ("MaxPooling3D", _pool(False)),
    "average_pooling1d": ("AveragePooling1D", _pool(True)),
    "average_pooling2d": ("AveragePooling2D", _pool(True)),
    "average_pooling3d": ("AveragePooling3D", _pool(True)),
    "global_max_pooling1d": ("GlobalMaxPooling1D", _GLOBAL_POOL),
    "global_max_pooling2d": ("GlobalMaxPooling2D", _GLOBAL_POOL),
    "global_max_pooling3d": ("GlobalMaxPooling3D", _GLOBAL_POOL),
    "global_average_pooling1d": ("GlobalAveragePooling1D", _GLOBAL_POOL),
    "global_average_pooling2d": ("GlobalAveragePooling2D", _GLOBAL_POOL),
    "global_average_pooling3d": ("GlobalAveragePooling3D", _GLOBAL_POOL),
    "adaptive_average_pooling1d": ("AdaptiveAveragePooling1D", _ADAPTIVE_POOL),
    "adaptive_average_pooling2d": ("AdaptiveAveragePooling2D", _ADAPTIVE_POOL),
    "adaptive_average_pooling3d": ("AdaptiveAveragePooling3D", _ADAPTIVE_POOL),
    "adaptive_max_pooling1d": ("AdaptiveMaxPooling1D", _ADAPTIVE_POOL),
    "adaptive_max_pooling2d": ("AdaptiveMaxPooling2D", _ADAPTIVE_POOL),
    "adaptive_max_pooling3d": ("AdaptiveMaxPooling3D", _ADAPTIVE_POOL),
    # normalization
    "batch_normalization": ("BatchNormalization", {
        "axis": "int", "momentum": "float", "epsilon": "float", "center": "bool", "scale": "bool",
        "beta_initializer": _INIT, "gamma_initializer": _INIT, "moving_mean_initializer": _INIT,
        "moving_variance_initializer": _INIT, "beta_regularizer": _REG, "gamma_regularizer": _REG,
        "beta_constraint": _CONS, "gamma_constraint": _CONS, "renorm": "bool", "renorm_clipping": "data",
        "renorm_momentum": "float", "synchronized": "bool"}),
    "layer_normalization": ("LayerNormalization", {"axis": "ints", "epsilon": "float", "center": "bool",
                                                   "scale": "bool", **_NORM_WEIGHTS}),
    "group_normalization": ("GroupNormalization", {"groups": "int", "axis": "int", "epsilon": "float",
                                                   "center": "bool", "scale": "bool", **_NORM_WEIGHTS}),
    "rms_normalization": ("RMSNormalization", {"axis": "ints", "epsilon": "float"}),
    "unit_normalization": ("UnitNormalization", {"axis": "ints"}),
    "spectral_normalization": ("SpectralNormalization", {"layer": "layer!", "power_iterations": "int"}),
    # regularization
    "dropout": ("Dropout", {"rate": "float!", "noise_shape": "shape?", "seed": "int?"}),
    "alpha_dropout": ("AlphaDropout", {"rate": "float!", "noise_shape": "shape?", "seed": "int?"}),
    "gaussian_dropout": ("GaussianDropout", {"rate": "float!", "seed": "int?"}),
    "gaussian_noise": ("GaussianNoise", {"stddev": "float!", "seed": "int?"}),
    "spatial_dropout1d": ("SpatialDropout1D", {"rate": "float!", "seed": "int?"}),
    "spatial_dropout2d": ("SpatialDropout2D", {"rate": "float!", "data_format": _DATA_FORMAT, "seed": "int?"}),
    "spatial_dropout3d": ("SpatialDropout3D", {"rate": "float!", "data_format": _DATA_FORMAT, "seed": "int?"}),
    "activity_regularization": ("ActivityRegularization", {"l1": "float", "l2": "float"}),
    # reshaping
    "flatten": ("Flatten", {"data_format": _DATA_FORMAT}),
    "reshape": ("Reshape", {"target_shape": "shape!"}),
    "permute": ("Permute", {"dims": "ints!"}),
    "repeat_vector": ("RepeatVector", {"n": "int!"}),
    "cropping1d": ("Cropping1D", {"cropping": "ints"}),
    "cropping2d": ("Cropping2D", {"cropping": "ints", "data_format": _DATA_FORMAT}),
    "cropping3d": ("Cropping3D", {"cropping": "ints", "data_format": _DATA_FORMAT}),
    "up_sampling1d": ("UpSampling1D", {"size": "int"}),
    "up_sampling2d": ("UpSampling2D", {"size": "ints", "data_format": _DATA_FORMAT,
                                       "interpolation": "nearest|bilinear|bicubic|lanczos3|lanczos5"}),
    "up_sampling3d": ("UpSampling3D", {"size": "ints", "data_format": _DATA_FORMAT}),
    "zero_padding1d": ("ZeroPadding1D", {"padding": "ints", "data_format": _DATA_FORMAT}),
    "zero_padding2d": ("ZeroPadding2D", {"padding": "ints", "data_format": _DATA_FORMAT}),
    "zero_padding3d": ("ZeroPadding3D", {"padding": "ints", "data_format": _DATA_FORMAT}),
    # merging (a node with several inputs)
    "add": ("Add", {}),
    "subtract": ("Subtract", {}),
    "multiply": ("Multiply", {}),
    "average": ("Average", {}),
    "maximum": ("Maximum", {}),
    "minimum": ("Minimum", {}),
    "concatenate": ("Concatenate", {"axis": "int"}),
    "dot": ("Dot", {"axes": "ints!", "normalize": "bool"}),
    # recurrent
    "lstm": ("LSTM", _LSTM),
    "gru": ("GRU", _GRU),
    "simple_rnn": ("SimpleRNN", _SIMPLE_RNN),
    "conv_lstm1d": ("ConvLSTM1D", _CONV_LSTM),
    "conv_lstm2d": ("ConvLSTM2D", _CONV_LSTM),
    "conv_lstm3d": ("ConvLSTM3D", _CONV_LSTM),
    "bidirectional": ("Bidirectional", {"layer": "layer!", "merge_mode": "sum|mul|concat|ave?",
                                        "weights": "data", "backward_layer": "layer?"}),
    "time_distributed": ("TimeDistributed", {"layer": "layer!"}),
    # attention
    "attention": ("Attention", {"use_scale": "bool", "score_mode": "dot|concat", "dropout": "float",
                                "seed": "int?"}),
    "additive_attention": ("AdditiveAttention", {"use_scale": "bool", "dropout": "float"}),
    "multi_head_attention": ("MultiHeadAttention", {
        "num_heads": "int!", "key_dim": "int!", "value_dim": "int?", "dropout": "float", "use_bias": "bool",
        "output_shape": "ints?", "attention_axes": "ints?", "sliding_window": "int?", "flash_attention": "bool?",
        **_ATTENTION_WEIGHTS, "use_gate": "bool", "seed": "int?"}),
    "group_query_attention": ("GroupQueryAttention", {
        "head_dim": "int!", "num_query_heads": "int!", "num_key_value_heads": "int!", "dropout": "float",
        "use_bias": "bool", "sliding_window": "int?", "flash_attention": "bool?", **_ATTENTION_WEIGHTS,
        "use_gate": "bool", "seed": "int?"}),
    # preprocessing: numbers and categories
    "rescaling": ("Rescaling", {"scale": "floats!", "offset": "floats"}),
    "normalization": ("Normalization", {"axis": "ints?", "mean": "floats?", "variance": "floats?",
                                        "invert": "bool"}),
    "discretization": ("Discretization", {"bin_boundaries": "floats?", "num_bins": "int?", "epsilon": "float",
                                          "output_mode": "int|one_hot|multi_hot|count", "sparse": "bool"}),
    "category_encoding": ("CategoryEncoding", {"num_tokens": "int?", "output_mode": "one_hot|multi_hot|count",
                                               "sparse": "bool"}),
    "hashing": ("Hashing", {"num_bins": "int!", "mask_value": "data", "salt": "ints?",
                            "output_mode": "int|one_hot|multi_hot|count", "sparse": "bool"}),
    "hashed_crossing": ("HashedCrossing", {"num_bins": "int!", "output_mode": "int|one_hot", "sparse": "bool"}),
    "integer_lookup": ("IntegerLookup", {
        "max_tokens": "int?", "num_oov_indices": "int", "mask_token": "int?", "oov_token": "int",
        "vocabulary": "data", "vocabulary_dtype": "int32|int64", "idf_weights": "floats?", "invert": "bool",
        "output_mode": "int|one_hot|multi_hot|count|tf_idf", "sparse": "bool", "pad_to_max_tokens": "bool",
        "oov_method": "floormod|farmhash", "salt": "ints?"}),
    "string_lookup": ("StringLookup", {
        "max_tokens": "int?", "num_oov_indices": "int", "mask_token": "str?", "oov_token": "str",
        "vocabulary": "data", "idf_weights": "floats?", "invert": "bool",
        "output_mode": "int|one_hot|multi_hot|count|tf_idf", "pad_to_max_tokens": "bool", "sparse": "bool",
        "encoding": "str", "salt": "ints?"}),
    "text_vectorization": ("TextVectorization", {
        "max_tokens": "int?", "standardize": "str?", "split": "str?", "ngrams": "ints?",
        "output_mode": "int|multi_hot|count|tf_idf", "output_sequence_length": "int?",
        "pad_to_max_tokens": "bool", "vocabulary": "data", "idf_weights": "floats?", "sparse": "bool",
        "ragged": "bool", "encoding": "str"}),
    # preprocessing: audio
    "mel_spectrogram": ("MelSpectrogram", {
        "fft_length": "int", "sequence_stride": "int", "sequence_length": "int?", "window": "str?",
        "sampling_rate": "int", "num_mel_bins": "int", "min_freq": "float", "max_freq": "float?",
        "power_to_db": "bool", "top_db": "float", "mag_exp": "float", "min_power": "float",
        "ref_power": "float"}),
    "stft_spectrogram": ("STFTSpectrogram", {
        "mode": "log|magnitude|psd|real|imag|angle|stft", "frame_length": "int", "frame_step": "int?",
        "fft_length": "int?", "window": "str?", "periodic": "bool", "scaling": "density|spectrum?",
        "padding": "valid|same", "expand_dims": "bool", "data_format": _DATA_FORMAT}),
    # preprocessing: images
    "resizing": ("Resizing", {"height": "int!", "width": "int!", "interpolation": "str",
                              "crop_to_aspect_ratio": "bool", "pad_to_aspect_ratio": "bool", "fill_mode": "str",
                              "fill_value": "float", "antialias": "bool", "data_format": _DATA_FORMAT}),
    "center_crop": ("CenterCrop", {"height": "int!", "width": "int!", "data_format": _DATA_FORMAT}),
    "random_crop": ("RandomCrop", {"height": "int!", "width": "int!", "seed": "int?", "data_format": _DATA_FORMAT}),
    "random_flip": ("RandomFlip", {"mode": "horizontal|vertical|horizontal_and_vertical", "seed": "int?",
                                   "data_format": _DATA_FORMAT}),
    "random_rotation": ("RandomRotation", {"factor": "floats!", "fill_mode": "str", "interpolation": "str",
                                           "seed": "int?", "fill_value": "float", "data_format": _DATA_FORMAT}),
    "random_translation": ("RandomTranslation", {"height_factor": "floats!", "width_factor": "floats!", **_FILL,
                                                 "data_format": _DATA_FORMAT}),
    "random_zoom": ("RandomZoom", {"height_factor": "floats!", "width_factor": "floats?", **_FILL,
                                   "data_format": _DATA_FORMAT}),
    "random_shear": ("RandomShear", {"x_factor": "floats", "y_factor": "floats", "interpolation": "str",
                                     "fill_mode": "str", "fill_value": "float", "data_format": _DATA_FORMAT,
                                     "seed": "int?"}),
    "random_perspective": ("RandomPerspective", {"factor": "floats", "scale": "float", "interpolation": "str",
                                                 "fill_value": "float", "seed": "int?",
                                                 "data_format": _DATA_FORMAT}),
    "random_elastic_transform": ("RandomElasticTransform", {
        "factor": "floats", "scale": "floats", "interpolation": "str", "fill_mode": "str", "fill_value": "float",
        **_VALUE_RANGE, "seed": "int?", "data_format": _DATA_FORMAT}),
    "random_brightness": ("RandomBrightness", {"factor": "floats!", **_VALUE_RANGE, "seed": "int?"}),
    "random_contrast": ("RandomContrast", {"factor": "floats!", **_VALUE_RANGE, "seed": "int?"}),
    "random_saturation": ("RandomSaturation", {"factor": "floats!", **_VALUE_RANGE, "data_format": _DATA_FORMAT,
                                               "seed": "int?"}),
    "random_hue": ("RandomHue", {"factor": "floats!", **_VALUE_RANGE, "data_format": _DATA_FORMAT, "seed": "int?"}),
    "random_sharpness": ("RandomSharpness", {"factor": "floats!", **_VALUE_RANGE, "data_format": _DATA_FORMAT,
                                             "seed": "int?"}),
    "random_posterization": ("RandomPosterization", {"factor": "ints!", **_VALUE_RANGE,
                                                     "data_format": _DATA_FORMAT, "seed": "int?"}),
    "random_color_degeneration": ("RandomColorDegeneration", {"factor": "floats!", **_VALUE_RANGE,
                                                              "data_format": _DATA_FORMAT, "seed": "int?"}),
    "random_color_jitter": ("RandomColorJitter", {
        **_VALUE_RANGE, "brightness_factor": "floats?", "contrast_factor": "floats?",
        "saturation_factor": "floats?", "hue_factor": "floats?", "seed": "int?", "data_format": _DATA_FORMAT}),
    "random_grayscale": ("RandomGrayscale", {"factor": "float", "data_format": _DATA_FORMAT, "seed": "int?"}),
    "random_invert": ("RandomInvert", {"factor": "floats", **_VALUE_RANGE, "seed": "int?",
                                       "data_format": _DATA_FORMAT}),
    "random_gaussian_blur": ("RandomGaussianBlur", {"factor": "floats", "kernel_size": "ints", "sigma": "floats",
                                                    **_VALUE_RANGE, "data_format": _DATA_FORMAT, "seed": "int?"}),
    "random_erasing": ("RandomErasing", {"factor": "floats", "scale": "floats", "fill_value": "floats?",
                                         **_VALUE_RANGE, "seed": "int?", "data_format": _DATA_FORMAT}),
    "rand_augment": ("RandAugment", {**_VALUE_RANGE, "num_ops": "int", "factor": "floats", "interpolation": "str",
                                     "seed": "int?", "data_format": _DATA_FORMAT}),
    "aug_mix": ("AugMix", {**_VALUE_RANGE, "num_chains": "int", "chain_depth": "ints", "factor": "floats",
                           "alpha": "float", "all_ops": "bool", "interpolation": "str", "seed": "int?",
                           "data_format": _DATA_FORMAT}),
    "cut_mix": ("CutMix", {"factor": "floats", "seed": "int?", "data_format": _DATA_FORMAT}),
    "mix_up": ("MixUp", {"alpha": "float", "data_format": _DATA_FORMAT, "seed": "int?"}),
    "auto_contrast": ("AutoContrast", {**_VALUE_RANGE}),
    "equalization": ("Equalization", {**_VALUE_RANGE, "bins": "int", "data_format": _DATA_FORMAT}),
    "solarization": ("Solarization", {"addition_factor": "floats", "threshold_factor": "floats", **_VALUE_RANGE,
                                      "seed": "int?"}),
    "contrast_limited_adaptive_histogram_equalization": ("ContrastLimitedAdaptiveHistogramEqualization", {
        **_VALUE_RANGE, "clip_limit": "float", "tile_grid_size": "ints", "data_format": _DATA_FORMAT}),
    "max_num_bounding_boxes": ("MaxNumBoundingBoxes", {"max_number": "int!", "fill_value": "int"}),
}

# keras-hub's layers (the optional extra tftrain[hub]), in LAYERS too: the same entries, built
# from keras-hub's registered classes ("keras_hub>Name", which safe-mode loading accepts).
HUB_LAYERS: dict[str, tuple[str, dict[str, str]]] = {
    "position_embedding": ("PositionEmbedding", {"sequence_length": "int!", "initializer": _INIT}),
    "token_and_position_embedding": ("TokenAndPositionEmbedding", {
        "vocabulary_size": "int!", "sequence_length": "int!", "embedding_dim": "int!", "tie_weights": "bool",
        "embeddings_initializer": _INIT, "mask_zero": "bool"}),
    "transformer_encoder": ("TransformerEncoder", {
        "intermediate_dim": "int!", "num_heads": "int!", "dropout": "float", "activation": "activation?",
        "layer_norm_epsilon": "float", "kernel_initializer": _INIT, "bias_initializer": _INIT,
        "normalize_first": "bool"}),
}
LAYERS.update(HUB_LAYERS)

# Other names of the same layers (Keras's aliases, and the snake_case Keras derives from class
# names such as ReLU -> re_lu); Keras's class names themselves are accepted too.
LAYER_ALIASES: dict[str, str] = {
    "re_lu": "relu", "leaky_re_lu": "leaky_relu", "p_re_lu": "prelu",
    "convolution1d": "conv1d", "convolution2d": "conv2d", "convolution3d": "conv3d",
    "convolution1d_transpose": "conv1d_transpose", "convolution2d_transpose": "conv2d_transpose",
    "convolution3d_transpose": "conv3d_transpose",
    "separable_convolution1d": "separable_conv1d", "separable_convolution2d": "separable_conv2d",
    "max_pool1d": "max_pooling1d", "max_pool2d": "max_pooling2d", "max_pool3d": "max_pooling3d",
    "avg_pool1d": "average_pooling1d", "avg_pool2d": "average_pooling2d", "avg_pool3d": "average_pooling3d",
    "global_max_pool1d": "global_max_pooling1d", "global_max_pool2d": "global_max_pooling2d",
    "global_max_pool3d": "global_max_pooling3d", "global_avg_pool1d": "global_average_pooling1d",
    "global_avg_pool2d": "global_average_pooling2d", "global_avg_pool3d": "global_average_pooling3d",
    "grouped_query_attention": "group_query_attention", "clahe": "contrast_limited_adaptive_histogram_equalization",
}
# Keras class aliases, by class name.
CLASS_ALIASES: dict[str, str] = {
    "Convolution1D": "Conv1D", "Convolution2D": "Conv2D", "Convolution3D": "Conv3D",
    "Convolution1DTranspose": "Conv1DTranspose", "Convolution2DTranspose": "Conv2DTranspose",
    "Convolution3DTranspose": "Conv3DTranspose", "SeparableConvolution1D": "SeparableConv1D",
    "SeparableConvolution2D": "SeparableConv2D", "MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D",
    "MaxPool3D": "MaxPooling3D", "AvgPool1D": "AveragePooling1D", "AvgPool2D": "AveragePooling2D",
    "AvgPool3D": "AveragePooling3D", "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D", "GlobalMaxPool3D": "GlobalMaxPooling3D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D", "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalAvgPool3D": "GlobalAveragePooling3D", "GroupedQueryAttention": "GroupQueryAttention",
}

_CODE = "runs code that the config cannot show (tftrain builds models from data only, as Keras's safe mode loads them)"
# Built-in Keras layers a config may not name, and why.
REFUSED: dict[str, str] = {
    "Lambda": "a Lambda layer is a Python function; " + _CODE,
    "TFSMLayer": "it loads and runs a TensorFlow SavedModel, a program; " + _CODE,
    "JaxLayer": "it wraps JAX code; " + _CODE,
    "FlaxLayer": "it wraps a Flax module; " + _CODE,
    "TorchModuleWrapper": "it wraps a PyTorch module; " + _CODE,
    "Layer": "the abstract base class of layers: it computes nothing",
    "Wrapper": "an abstract base class: use bidirectional or time_distributed",
    "InputLayer": "the model's input comes from the data: tftrain adds it",
    "RNN": "it takes a cell object: use lstm, gru or simple_rnn (inside bidirectional for both directions)",
    "StackedRNNCells": "it takes cell objects: stack lstm, gru or simple_rnn layers instead",
    "LSTMCell": "a cell, used inside an RNN layer: use lstm",
    "GRUCell": "a cell, used inside an RNN layer: use gru",
    "SimpleRNNCell": "a cell, used inside an RNN layer: use simple_rnn",
    "Pipeline": "it takes layer objects: write its layers in the list itself",
}
# Constructor parameters tftrain does not offer, and why.
UNSUPPORTED_PARAMS: dict[str, str] = {
    "quantization_config": "it takes a Keras quantization object, not data",
}

# How a layer takes several inputs (graph nodes): as one list (merging, attention), or as
# separate arguments (multi-head attention: query, value[, key]). Every other layer takes one.
LIST_INPUTS = frozenset({"add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot",
                         "attention", "additive_attention"})
ARGUMENT_INPUTS = frozenset({"multi_head_attention", "group_query_attention"})
# Layers that expect images (height, width, channels): grey images of shape (H, W) get a channel
# axis when one of these comes first.
IMAGE_LAYERS = frozenset({
    "conv2d", "conv2d_transpose", "separable_conv2d", "depthwise_conv2d", "max_pooling2d", "average_pooling2d",
    "global_max_pooling2d", "global_average_pooling2d", "adaptive_average_pooling2d", "adaptive_max_pooling2d",
    "spatial_dropout2d", "cropping2d", "up_sampling2d", "zero_padding2d", "resizing", "center_crop",
    "random_crop", "random_flip", "random_rotation", "random_translation", "random_zoom", "random_shear",
    "random_perspective", "random_elastic_transform", "random_erasing", "random_gaussian_blur"})

# Regularizers, initializers and constraints: user name -> (Keras class name, {parameter: type}).
REGULARIZERS: dict[str, tuple[str, dict[str, str]]] = {
    "l1": ("L1", {"l1": "float"}),
    "l2": ("L2", {"l2": "float"}),
    "l1_l2": ("L1L2", {"l1": "float", "l2": "float"}),
    "orthogonal_regularizer": ("OrthogonalRegularizer", {"factor": "float", "mode": "rows|columns"}),
}
_FAN = {"seed": "int?", "input_axes": "ints?", "output_axes": "ints?"}
INITIALIZERS: dict[str, tuple[str, dict[str, str]]] = {
    "zeros": ("Zeros", {}),
    "ones": ("Ones", {}),
    "constant": ("Constant", {"value": "floats"}),
    "random_normal": ("RandomNormal", {"mean": "float", "stddev": "float", "seed": "int?"}),
    "random_uniform": ("RandomUniform", {"minval": "float", "maxval": "float", "seed": "int?"}),
    "truncated_normal": ("TruncatedNormal", {"mean": "float", "stddev": "float", "seed": "int?"}),
    "glorot_normal": ("GlorotNormal", _FAN),
    "glorot_uniform": ("GlorotUniform", _FAN),
    "he_normal": ("HeNormal", _FAN),
    "he_uniform": ("HeUniform", _FAN),
    "lecun_normal": ("LecunNormal", _FAN),
    "lecun_uniform": ("LecunUniform", _FAN),
    "variance_scaling": ("VarianceScaling", {
        "scale": "float", "mode": "fan_in|fan_out|fan_avg",
        "distribution": "truncated_normal|untruncated_normal|uniform", **_FAN}),
    "orthogonal": ("Orthogonal", {"gain": "float", "seed": "int?"}),
    "identity": ("Identity", {"gain": "float"}),
    "stft": ("STFT", {"side": "real|imag", "window": "str?", "scaling": "density|spectrum?", "periodic": "bool"}),
}
CONSTRAINTS: dict[str, tuple[str, dict[str, str]]] = {
    "max_norm": ("MaxNorm", {"max_value": "float", "axis": "ints"}),
    "min_max_norm": ("MinMaxNorm", {"min_value": "float", "max_value": "float", "rate": "float", "axis": "ints"}),
    "non_neg": ("NonNeg", {}),
    "unit_norm": ("UnitNorm", {"axis": "ints"}),
}
COMPONENTS = {"regularizer": REGULARIZERS, "initializer": INITIALIZERS, "constraint": CONSTRAINTS}

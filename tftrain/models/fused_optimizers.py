"""Keras's Adam and AdamW with TensorFlow's fused update kernel (ResourceApplyAdam).

Keras 3 writes Adam's update as ~20 small ops per variable (casts, powers, two assign_adds, a
sqrt, a division, an assign_sub). On a small model each op costs more to dispatch than to compute:
the table MLP of bench/compare.py spends ~12% of its step there. TensorFlow's own ResourceApplyAdam
kernel (the one tf.keras 2's Adam used) does the same update in one op per variable:
m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= alpha m / (sqrt(v) + eps), with alpha =
lr sqrt(1 - b2^t) / (1 - b1^t) as Keras computes it.

It takes the place of the optimizer's per-step update loop (`_backend_update_step`) on the
instance only: the class, its config, its variables and what a saved model records stay Keras's
Adam, so a .keras file and a checkpoint read the same with or without it. The last bits differ
from Keras's ops (the kernel forms 1 - b1 in float32), the same in every run, so results stay
reproducible and resume bit-identical.
"""

from __future__ import annotations

import types

import keras

FUSED_DTYPES = ("float16", "bfloat16", "float32", "float64")


def fuse_update(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """`optimizer`, updating through ResourceApplyAdam where it is exactly Keras's Adam or AdamW
    without amsgrad (a subclass or a plugin may change the update: it keeps its own)."""
    if type(optimizer) in (keras.optimizers.Adam, keras.optimizers.AdamW) and not optimizer.amsgrad:
        optimizer._backend_update_step = types.MethodType(_fused_adam_updates, optimizer)
    return optimizer


def _fused_adam_updates(self: keras.optimizers.Adam, grads, trainable_variables, learning_rate):
    """Adam's update of every variable, one kernel call each. The step's scalars (b1^t, b2^t, the
    rate) are formed once per dtype, not once per variable as Keras's update_step does: on a
    small model those ops cost as much as the kernels. Keras's own path where the kernel does
    not fit: under a tf.distribute strategy (the update runs per replica on distributed
    variables, through Keras's merge call), a sparse gradient (the kernel takes dense ones
    only), or a dtype the kernel lacks."""
    import tensorflow as tf

    if tf.distribute.has_strategy():
        return type(self)._backend_update_step(self, grads, trainable_variables, learning_rate)
    scalars = {}
    for gradient, variable in zip(grads, trainable_variables):
        variable = variable.value if isinstance(variable, keras.Variable) else variable
        dtype = variable.dtype
        if isinstance(gradient, tf.IndexedSlices) or dtype.name not in FUSED_DTYPES:
            self.update_step(gradient, variable, learning_rate)
            continue
        if dtype not in scalars:
            scalars[dtype] = _step_scalars(self, dtype, learning_rate)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=self._momentums[index].handle,
                                     v=self._velocities[index].handle, grad=tf.cast(gradient, dtype),
                                     **scalars[dtype])


def _step_scalars(self: keras.optimizers.Adam, dtype, learning_rate) -> dict:
    """ResourceApplyAdam's scalar arguments for this step, in `dtype`: the kernel forms
    alpha = lr sqrt(1 - b2^t) / (1 - b1^t) itself, as Keras's update_step does."""
    import tensorflow as tf

    step = tf.cast(self.iterations + 1, dtype)
    beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
    return {"beta1_power": tf.pow(beta_1, step), "beta2_power": tf.pow(beta_2, step),
            "lr": tf.cast(learning_rate, dtype), "beta1": beta_1, "beta2": beta_2,
            "epsilon": tf.cast(self.epsilon, dtype)}

"""Keras's Adam and AdamW with TensorFlow's fused update kernel (ResourceApplyAdam).

Keras 3 writes Adam's update as ~20 small ops per variable (casts, powers, two assign_adds, a
sqrt, a division, an assign_sub). On a small model each op costs more to dispatch than to compute:
the table MLP of bench/compare.py spends ~12% of its step there. TensorFlow's own ResourceApplyAdam
kernel (the one tf.keras 2's Adam used) does the same update in one op per variable:
m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= alpha m / (sqrt(v) + eps), with alpha =
lr sqrt(1 - b2^t) / (1 - b1^t) as Keras computes it.

It takes the place of the optimizer's `update_step` on the instance only: the class, its config,
its variables and what a saved model records stay Keras's Adam, so a .keras file and a checkpoint
read the same with or without it. The last bits differ from Keras's ops (the kernel forms 1 - b1
in float32), the same in every run, so results stay reproducible and resume bit-identical.
"""

from __future__ import annotations

import types

import keras

FUSED_DTYPES = ("float16", "bfloat16", "float32", "float64")


def fuse_update(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """`optimizer`, updating through ResourceApplyAdam where it is exactly Keras's Adam or AdamW
    without amsgrad (a subclass or a plugin may change the update: it keeps its own)."""
    if type(optimizer) in (keras.optimizers.Adam, keras.optimizers.AdamW) and not optimizer.amsgrad:
        optimizer.update_step = types.MethodType(_fused_adam_step, optimizer)
    return optimizer


def _fused_adam_step(self: keras.optimizers.Adam, gradient, variable, learning_rate):
    """Adam's update of `variable` in one kernel call; Keras's own ops where the kernel does not
    fit: under a tf.distribute strategy (the update runs per replica on distributed variables), a
    sparse gradient (the kernel takes dense ones only), or a dtype the kernel lacks."""
    import tensorflow as tf

    if (tf.distribute.has_strategy() or isinstance(gradient, tf.IndexedSlices)
            or variable.dtype.name not in FUSED_DTYPES):
        return keras.optimizers.Adam.update_step(self, gradient, variable, learning_rate)
    dtype = variable.dtype
    index = self._get_variable_index(variable)
    m, v = self._momentums[index], self._velocities[index]
    step = tf.cast(self.iterations + 1, dtype)
    beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=m.handle, v=v.handle, beta1_power=tf.pow(beta_1, step),
        beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
        epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))

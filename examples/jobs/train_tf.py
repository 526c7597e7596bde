"""A small TensorFlow (Keras) training job: fit y = 3x - 1 with one dense layer."""

import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

print(f"tensorflow {tf.__version__} in {sys.prefix}; torch importable: {importlib.util.find_spec('torch') is not None}")
print(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r} cpus={sorted(os.sched_getaffinity(0))}")
tf.random.set_seed(0)
x = np.linspace(-1, 1, 256, dtype="float32").reshape(-1, 1)
y = 3 * x - 1
model = tf.keras.Sequential([tf.keras.Input(shape=(1,)), tf.keras.layers.Dense(1)])
model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=0.5), loss="mse")
history = model.fit(x, y, epochs=100, batch_size=256, verbose=0)
weight, bias = (float(v.numpy().ravel()[0]) for v in model.layers[0].weights)
print(f"done: loss {history.history['loss'][-1]:.5f}, w {weight:.3f}, b {bias:.3f}")
sys.exit(0 if abs(weight - 3) < 0.05 and abs(bias + 1) < 0.05 else 1)

"""Step prepare: scikit-learn's digits (shipped with the package, no download), split 70/30 into
training and held-out rows, pixels scaled to [0, 1]."""

import os

import numpy as np
from sklearn.datasets import load_digits

digits = load_digits()
order = np.random.default_rng(0).permutation(len(digits.target))
x, y = (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)
cut = int(0.7 * len(order))
train, test = order[:cut], order[cut:]
out = os.environ["PIPELINE_OUTPUT_DATA"]
np.savez(f"{out}/digits.npz", x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
print(f"{len(train)} training rows, {len(test)} held out")

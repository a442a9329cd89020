"""scikit-learn's bundled 8x8 handwritten digits: the zero-download default data set."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .dataset import Dataset, Split, split_off_validation

TEST_FRACTION = 0.2


def load(resolution: int, val_fraction: float) -> Dataset:
    """The 1,797 digit images as a Dataset: a fixed, stratified 20 % test split, then
    validation from the rest. Grey levels 0-16 are scaled to 0-255 and repeated over
    three channels, so the data looks like any RGB set.

    Args:
        resolution: image side in pixels (bilinear from 8).
        val_fraction: share of each class of the training part held out for validation.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) * (255.0 / 16.0))[:, None]
    if resolution != 8:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    images = x.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1).numpy()
    labels = bunch.target.astype(np.int64)
    # a fixed, stratified test split first, then validation from the remaining training part
    rest, test = split_off_validation(images, labels, TEST_FRACTION)
    train, val = split_off_validation(rest.images.numpy(), rest.labels.numpy(), val_fraction)
    return Dataset("digits", [str(d) for d in range(10)], train, val,
                   Split(test.images, test.labels), "scikit-learn load_digits", native=8)

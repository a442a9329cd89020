"""Data sets as uint8 image tensors with named train / validation / test splits.

    load_dataset("digits")                         # scikit-learn's bundled digits, no download
    load_dataset("cifar10", data_dir="../shared/data")
    load_dataset("imagefolder:/data/flowers", resolution=128)

The validation split is carved from the training data with a fixed seed, so every
run of every command sees the same split; search and scaling select on it only.
"""
from .dataset import DataError, Dataset, Split, load_dataset

__all__ = ["DataError", "Dataset", "Split", "load_dataset"]

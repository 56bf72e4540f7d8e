"""Datasets: MNIST-5k and scikit-learn digits shipped with the install, user IDX folders."""

from .datasets import Dataset, batches, dataset_names, load_dataset

__all__ = ["Dataset", "batches", "dataset_names", "load_dataset"]
